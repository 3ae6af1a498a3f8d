/*
 * test_etcd_client.c — the etcd client (etcd/) against one real etcd member,
 * started here (etcd_test.h) and killed at the end.
 *
 *   kv            put/get/range/delete, binary keys, limits, prev_kv
 *   txn           create-if-absent and CAS on mod_revision: success and
 *                 failure (a failed compare is a result, not an error)
 *   lease         a leased key vanishes without keepalives and stays with
 *                 the keeper; revoke; the keeper reports a lost lease
 *   watch         puts/deletes in order; SIGKILL etcd, restart it on the
 *                 same data dir, writes while the watch is down: resumed
 *                 from the right revision, nothing lost or repeated
 *   compacted     a watch from a compacted revision is reported as such
 *   deadline      an endpoint that accepts TCP and never answers fails
 *                 within the deadline naming the endpoint; [dead, live] works
 *
 * Three members and fail-over: test_etcd_cluster.c.
 * Exit 77 (skipped) only when no etcd binary is installed (ETCD_BIN or
 * etcd on PATH); CI installs etcd-server, so there it runs.
 */
#include "etcd_test.h"

static member single;
static char single_ep[64];

static int start_single(void)
{
    char cluster[128];
    snprintf(cluster, sizeof(cluster), "%s=http://127.0.0.1:%d", single.name, single.peer_port);
    member_start(&single, cluster);
    return wait_ready(single_ep, 20000);
}

/* ------------------------------------------------------------------------
 * kv
 * ------------------------------------------------------------------------ */
TT_TEST(kv)
{
    ts_etcd *c = client_for(single_ep, 5000);
    int64_t rev1 = 0, rev2 = 0, deleted = 0;
    EOK(ts_etcd_put(c, "kv/a", 4, "one", 3, 0, &rev1, err, sizeof(err)));
    EOK(ts_etcd_put(c, "kv/b", 4, "two", 3, 0, &rev2, err, sizeof(err)));
    TT_ASSERT(rev2 == rev1 + 1);
    const char bkey[] = {'k', 'v', '/', 0, (char)0xff, 'z'};
    char bval[100000];
    for (size_t i = 0; i < sizeof(bval); i++) bval[i] = (char)(i * 7);
    EOK(ts_etcd_put(c, bkey, sizeof(bkey), bval, sizeof(bval), 0, NULL, err, sizeof(err)));

    ts_etcd_resp r;
    EOK(ts_etcd_get(c, "kv/a", 4, 0, 0, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 1);
    TT_ASSERT_STR(r.kvs[0].key, "kv/a");
    TT_ASSERT_STR(r.kvs[0].value, "one");
    TT_ASSERT_EQ_INT(r.kvs[0].create_revision, rev1);
    TT_ASSERT_EQ_INT(r.kvs[0].mod_revision, rev1);
    TT_ASSERT_EQ_INT(r.kvs[0].version, 1);
    TT_ASSERT(r.revision >= rev2);
    ts_etcd_resp_free(&r);

    EOK(ts_etcd_get(c, bkey, sizeof(bkey), 0, 0, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 1);
    TT_ASSERT_EQ_INT(r.kvs[0].key_len, sizeof(bkey));
    TT_ASSERT(!memcmp(r.kvs[0].key, bkey, sizeof(bkey)));
    TT_ASSERT_EQ_INT(r.kvs[0].value_len, sizeof(bval));
    TT_ASSERT(!memcmp(r.kvs[0].value, bval, sizeof(bval)));
    ts_etcd_resp_free(&r);

    /* prefix with a limit: sorted by key, count covers all, more set */
    EOK(ts_etcd_get(c, "kv/", 3, 1, 2, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 2);
    TT_ASSERT_EQ_INT(r.count, 3);
    TT_ASSERT_EQ_INT(r.more, 1);
    TT_ASSERT_EQ_INT(r.kvs[0].key_len, sizeof(bkey)); /* "kv/\0..." sorts first */
    TT_ASSERT_STR(r.kvs[1].key, "kv/a");
    ts_etcd_resp_free(&r);

    /* a missing key is an empty answer, not an error */
    EOK(ts_etcd_get(c, "kv/none", 7, 0, 0, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 0);
    ts_etcd_resp_free(&r);

    /* put with prev_kv; read at an older revision */
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = "kv/a", .key_len = 4, .value = "uno",
                      .value_len = 3, .prev_kv = 1};
    EOK(ts_etcd_do(c, &put, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 1);
    TT_ASSERT_STR(r.kvs[0].value, "one");
    ts_etcd_resp_free(&r);
    ts_etcd_op old = {.type = TS_ETCD_OP_RANGE, .key = "kv/a", .key_len = 4, .revision = rev1};
    EOK(ts_etcd_do(c, &old, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 1);
    TT_ASSERT_STR(r.kvs[0].value, "one");
    ts_etcd_resp_free(&r);

    EOK(ts_etcd_delete(c, "kv/a", 4, 0, &deleted, err, sizeof(err)));
    TT_ASSERT_EQ_INT(deleted, 1);
    EOK(ts_etcd_delete(c, "kv/", 3, 1, &deleted, err, sizeof(err)));
    TT_ASSERT_EQ_INT(deleted, 2);
    EOK(ts_etcd_get(c, "kv/", 3, 1, 0, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 0);
    TT_ASSERT_EQ_INT(r.count, 0);
    ts_etcd_resp_free(&r);

    /* a value over the client's cap is refused before it is sent */
    ts_etcd_opts o;
    ts_etcd_opts_default(&o);
    o.endpoints = single_ep;
    o.max_value_bytes = 1000;
    ts_etcd *small;
    EOK(ts_etcd_create(&o, &small, err, sizeof(err)));
    TT_ASSERT_EQ_INT(ts_etcd_put(small, "kv/big", 6, bval, 5000, 0, NULL, err, sizeof(err)),
                     TS_ETCD_E_TOO_LARGE);
    TT_ASSERT(strstr(err, "kv/big"));
    ts_etcd_destroy(small);
    /* an answer over the response cap is refused, naming the cap */
    o.max_value_bytes = 0;
    o.max_response_bytes = 4096;
    EOK(ts_etcd_create(&o, &small, err, sizeof(err)));
    EOK(ts_etcd_put(small, "kv/big", 6, bval, 2000, 0, NULL, err, sizeof(err)));
    EOK(ts_etcd_get(small, "kv/big", 6, 0, 0, &r, err, sizeof(err))); /* 2000 -> 2668 base64 */
    ts_etcd_resp_free(&r);
    EOK(ts_etcd_put(small, "kv/big", 6, bval, 5000, 0, NULL, err, sizeof(err)));
    TT_ASSERT_EQ_INT(ts_etcd_get(small, "kv/big", 6, 0, 0, &r, err, sizeof(err)),
                     TS_ETCD_E_TOO_LARGE);
    TT_ASSERT_MSG(strstr(err, "4096-byte cap") && strstr(err, single_ep), "message: %s", err);
    EOK(ts_etcd_delete(small, "kv/big", 6, 0, NULL, err, sizeof(err)));
    ts_etcd_destroy(small);
    ts_etcd_destroy(c);
}

/* ------------------------------------------------------------------------
 * txn
 * ------------------------------------------------------------------------ */
TT_TEST(txn)
{
    ts_etcd *c = client_for(single_ep, 5000);
    const char *key = "txn/controller";
    size_t kl = strlen(key);
    /* create-if-absent, as the controller election does */
    ts_etcd_cmp absent = {.key = key, .key_len = kl, .target = TS_ETCD_CMP_CREATE,
                          .result = TS_ETCD_EQUAL, .number = 0};
    ts_etcd_op put1 = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = kl, .value = "broker-1",
                       .value_len = 8};
    ts_etcd_op get = {.type = TS_ETCD_OP_RANGE, .key = key, .key_len = kl};
    ts_etcd_txn_result t;
    EOK(ts_etcd_txn(c, &absent, 1, &put1, 1, &get, 1, &t, err, sizeof(err)));
    TT_ASSERT_EQ_INT(t.succeeded, 1);
    TT_ASSERT_EQ_INT(t.nresponses, 1);
    TT_ASSERT_EQ_INT(t.responses[0].type, TS_ETCD_OP_PUT);
    int64_t epoch = t.revision; /* the key's create revision: the controller epoch */
    ts_etcd_txn_result_free(&t);

    ts_etcd_op put2 = put1;
    put2.value = "broker-2";
    EOK(ts_etcd_txn(c, &absent, 1, &put2, 1, &get, 1, &t, err, sizeof(err)));
    TT_ASSERT_EQ_INT(t.succeeded, 0); /* lost the election: a result, not an error */
    TT_ASSERT_EQ_INT(t.nresponses, 1);
    TT_ASSERT_EQ_INT(t.responses[0].type, TS_ETCD_OP_RANGE);
    TT_ASSERT_EQ_INT(t.responses[0].nkvs, 1);
    TT_ASSERT_STR(t.responses[0].kvs[0].value, "broker-1");
    TT_ASSERT_EQ_INT(t.responses[0].kvs[0].create_revision, epoch);
    ts_etcd_txn_result_free(&t);

    /* CAS on mod_revision: a partition state update */
    const char *st = "txn/partitions/t/0/state";
    size_t sl = strlen(st);
    int64_t rev = 0;
    EOK(ts_etcd_put(c, st, sl, "{\"leader\":1,\"leader_epoch\":0}", 29, 0, &rev, err, sizeof(err)));
    ts_etcd_cmp cas[2] = {
        {.key = st, .key_len = sl, .target = TS_ETCD_CMP_MOD, .result = TS_ETCD_EQUAL,
         .number = rev},
        {.key = key, .key_len = kl, .target = TS_ETCD_CMP_CREATE, .result = TS_ETCD_EQUAL,
         .number = epoch},
    };
    ts_etcd_op upd = {.type = TS_ETCD_OP_PUT, .key = st, .key_len = sl,
                      .value = "{\"leader\":2,\"leader_epoch\":1}", .value_len = 29};
    EOK(ts_etcd_txn(c, cas, 2, &upd, 1, NULL, 0, &t, err, sizeof(err)));
    TT_ASSERT_EQ_INT(t.succeeded, 1);
    int64_t rev2 = t.revision;
    TT_ASSERT(rev2 > rev);
    ts_etcd_txn_result_free(&t);
    /* the same CAS again is stale: fails, and the value is untouched */
    EOK(ts_etcd_txn(c, cas, 2, &upd, 1, &(ts_etcd_op){.type = TS_ETCD_OP_RANGE, .key = st,
                                                       .key_len = sl},
                    1, &t, err, sizeof(err)));
    TT_ASSERT_EQ_INT(t.succeeded, 0);
    TT_ASSERT_EQ_INT(t.responses[0].kvs[0].mod_revision, rev2);
    ts_etcd_txn_result_free(&t);
    /* a deposed controller (wrong epoch) cannot write even with the right mod_revision */
    cas[0].number = rev2;
    cas[1].number = epoch + 1000;
    EOK(ts_etcd_txn(c, cas, 2, &upd, 1, NULL, 0, &t, err, sizeof(err)));
    TT_ASSERT_EQ_INT(t.succeeded, 0);
    ts_etcd_txn_result_free(&t);

    /* the other comparisons */
    ts_etcd_cmp more[4] = {
        {.key = st, .key_len = sl, .target = TS_ETCD_CMP_VERSION, .result = TS_ETCD_GREATER,
         .number = 1},
        {.key = st, .key_len = sl, .target = TS_ETCD_CMP_MOD, .result = TS_ETCD_LESS,
         .number = rev2 + 1},
        {.key = st, .key_len = sl, .target = TS_ETCD_CMP_VALUE, .result = TS_ETCD_NOT_EQUAL,
         .value = "x", .value_len = 1},
        {.key = key, .key_len = kl, .target = TS_ETCD_CMP_VALUE, .result = TS_ETCD_EQUAL,
         .value = "broker-1", .value_len = 8},
    };
    ts_etcd_op del = {.type = TS_ETCD_OP_DELETE, .key = "txn/", .key_len = 4, .prefix = 1,
                      .prev_kv = 1};
    EOK(ts_etcd_txn(c, more, 4, &del, 1, NULL, 0, &t, err, sizeof(err)));
    TT_ASSERT_EQ_INT(t.succeeded, 1);
    TT_ASSERT_EQ_INT(t.responses[0].type, TS_ETCD_OP_DELETE);
    TT_ASSERT_EQ_INT(t.responses[0].count, 2);
    TT_ASSERT_EQ_INT(t.responses[0].nkvs, 2);
    ts_etcd_txn_result_free(&t);

    /* etcd refuses an invalid txn (two puts of one key): an error, not retried */
    ts_etcd_op dup[2] = {put1, put1};
    TT_ASSERT_EQ_INT(ts_etcd_txn(c, NULL, 0, dup, 2, NULL, 0, &t, err, sizeof(err)),
                     TS_ETCD_E_INVAL);
    TT_ASSERT(strstr(err, "duplicate key"));
    TT_ASSERT(strstr(err, single_ep));
    ts_etcd_destroy(c);
}

/* ------------------------------------------------------------------------
 * leases
 * ------------------------------------------------------------------------ */
typedef struct lost_rec {
    atomic_int calls;
    ts_etcd_status why;
    char msg[512];
} lost_rec;

static void on_lost(void *arg, int64_t lease, ts_etcd_status why, const char *message)
{
    lost_rec *l = arg;
    l->why = why;
    snprintf(l->msg, sizeof(l->msg), "%s", message);
    atomic_fetch_add(&l->calls, 1);
}

static int key_exists(ts_etcd *c, const char *k)
{
    ts_etcd_resp r;
    if (ts_etcd_get(c, k, strlen(k), 0, 0, &r, err, sizeof(err))) return -1;
    int n = (int)r.nkvs;
    ts_etcd_resp_free(&r);
    return n;
}

TT_TEST(lease)
{
    ts_etcd *c = client_for(single_ep, 5000);
    int64_t id = 0, ttl = 0;
    /* without keepalive the key goes with the lease */
    EOK(ts_etcd_lease_grant(c, 2, 0, &id, &ttl, err, sizeof(err)));
    TT_ASSERT(id != 0);
    TT_ASSERT_EQ_INT(ttl, 2);
    EOK(ts_etcd_put(c, "lease/a", 7, "x", 1, id, NULL, err, sizeof(err)));
    ts_etcd_resp r;
    EOK(ts_etcd_get(c, "lease/a", 7, 0, 0, &r, err, sizeof(err)));
    TT_ASSERT_EQ_INT(r.nkvs, 1);
    TT_ASSERT(r.kvs[0].lease == id);
    ts_etcd_resp_free(&r);
    int64_t t0 = now_ms(), gone_ms = -1;
    while (now_ms() - t0 < 10000) {
        int e = key_exists(c, "lease/a");
        TT_ASSERT(e >= 0);
        if (e == 0) {
            gone_ms = now_ms() - t0;
            break;
        }
        sleep_ms(100);
    }
    TT_ASSERT_MSG(gone_ms >= 0, "leased key still there 10 s after a 2 s TTL");
    fprintf(stderr, "    leased key gone %lld ms after the put (TTL 2 s, no keepalive)\n",
            (long long)gone_ms);
    /* the lease is gone too: keepalive says so */
    TT_ASSERT_EQ_INT(ts_etcd_lease_keepalive(c, id, &ttl, err, sizeof(err)), TS_ETCD_E_NOT_FOUND);

    /* with the keeper the key stays, well past the TTL */
    EOK(ts_etcd_lease_grant(c, 2, 0, &id, &ttl, err, sizeof(err)));
    EOK(ts_etcd_put(c, "lease/b", 7, "x", 1, id, NULL, err, sizeof(err)));
    lost_rec lr = {0};
    ts_etcd_keeper *k;
    EOK(ts_etcd_keeper_start(c, id, 2, on_lost, &lr, &k, err, sizeof(err)));
    for (int i = 0; i < 10; i++) {
        sleep_ms(500);
        TT_ASSERT_EQ_INT(key_exists(c, "lease/b"), 1);
    }
    TT_ASSERT(!ts_etcd_keeper_lost(k));
    TT_ASSERT(ts_etcd_keeper_renewals(k) >= 5);
    /* the send time of the last answered keepalive: recent (one interval,
     * TTL/3, plus the answer) and never in the future */
    int64_t alive_age = now_ms() - ts_etcd_keeper_alive_ms(k);
    TT_ASSERT_MSG(alive_age >= 0 && alive_age < 2000, "last keepalive sent %lld ms ago",
                  (long long)alive_age);
    fprintf(stderr, "    keeper: %llu keepalives in 5 s for a 2 s TTL, key kept\n",
            (unsigned long long)ts_etcd_keeper_renewals(k));
    /* one explicit keepalive too */
    EOK(ts_etcd_lease_keepalive(c, id, &ttl, err, sizeof(err)));
    TT_ASSERT_EQ_INT(ttl, 2);
    /* revoke: the key goes at once, the keeper learns the lease is lost */
    EOK(ts_etcd_lease_revoke(c, id, err, sizeof(err)));
    TT_ASSERT_EQ_INT(key_exists(c, "lease/b"), 0);
    t0 = now_ms();
    while (!ts_etcd_keeper_lost(k) && now_ms() - t0 < 5000) sleep_ms(20);
    TT_ASSERT(ts_etcd_keeper_lost(k));
    TT_ASSERT_EQ_INT(atomic_load(&lr.calls), 1);
    TT_ASSERT_EQ_INT(lr.why, TS_ETCD_E_NOT_FOUND);
    TT_ASSERT(strstr(lr.msg, "gone"));
    ts_etcd_keeper_stop(k);
    TT_ASSERT_EQ_INT(ts_etcd_lease_revoke(c, id, err, sizeof(err)), TS_ETCD_E_NOT_FOUND);
    ts_etcd_destroy(c);
}

TT_TEST(watch)
{
    ts_etcd *c = client_for(single_ep, 10000);
    /* a key outside the prefix, to be sure it is not delivered */
    EOK(ts_etcd_put(c, "wother", 6, "no", 2, 0, NULL, err, sizeof(err)));
    static wrec w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    int64_t revs[WMAX];
    int types[WMAX];
    char keys[WMAX][32], vals[WMAX][32];
    int n = 0;

    /* start at the next revision, so nothing before the watch counts */
    ts_etcd_resp r;
    EOK(ts_etcd_get(c, "w/", 2, 1, 0, &r, err, sizeof(err)));
    int64_t start = r.revision + 1;
    ts_etcd_resp_free(&r);
    ts_etcd_watch_opts wo = {.key = "w/", .key_len = 2, .prefix = 1, .start_revision = start,
                             .cb = on_watch, .arg = &w};
    ts_etcd_watch *wt;
    EOK(ts_etcd_watch_start(c, &wo, &wt, err, sizeof(err)));

    /* phase 1: 60 puts and deletes while the watch runs */
    for (int i = 0; i < 60; i++) {
        snprintf(keys[n], 32, "w/k%02d", i % 7);
        if (i % 5 == 4) {
            int64_t d;
            ts_etcd_op del = {.type = TS_ETCD_OP_DELETE, .key = keys[n],
                              .key_len = strlen(keys[n])};
            EOK(ts_etcd_do(c, &del, &r, err, sizeof(err)));
            d = r.count;
            int64_t rv = r.revision;
            ts_etcd_resp_free(&r);
            if (!d) continue; /* nothing deleted: no event */
            types[n] = TS_ETCD_EV_DELETE;
            revs[n] = rv;
            vals[n][0] = '\0';
        } else {
            snprintf(vals[n], 32, "v%d", i);
            EOK(ts_etcd_put(c, keys[n], strlen(keys[n]), vals[n], strlen(vals[n]), 0, &revs[n],
                            err, sizeof(err)));
            types[n] = TS_ETCD_EV_PUT;
        }
        n++;
        if (i % 3 == 0) EOK(ts_etcd_put(c, "wother", 6, "no", 2, 0, NULL, err, sizeof(err)));
    }
    TT_ASSERT_MSG(wait_events(&w, n, 10000), "phase 1: %d of %d events", wrec_count(&w), n);
    int phase1 = n;

    /* phase 2: SIGKILL etcd; restart it on the same data dir and port; write
     * 60 more events at once, before the watch has had time to reconnect */
    member_kill(&single);
    int64_t t_kill = now_ms();
    sleep_ms(300);
    TT_ASSERT(start_single());
    int64_t t_up = now_ms();
    for (int i = 0; i < 60; i++) {
        snprintf(keys[n], 32, "w/r%02d", i % 11);
        snprintf(vals[n], 32, "after%d", i);
        EOK(ts_etcd_put(c, keys[n], strlen(keys[n]), vals[n], strlen(vals[n]), 0, &revs[n], err,
                        sizeof(err)));
        types[n] = TS_ETCD_EV_PUT;
        n++;
    }
    TT_ASSERT_MSG(wait_events(&w, n, 15000), "phase 2: %d of %d events", wrec_count(&w), n);
    int64_t t_all = now_ms();
    sleep_ms(300); /* anything repeated would arrive now */
    ts_etcd_watch_stop(wt);

    pthread_mutex_lock(&w.mu);
    int got = w.n, disc = w.disconnects, bad = w.bad, failed = w.failed;
    pthread_mutex_unlock(&w.mu);
    TT_ASSERT_EQ_INT(bad, 0);
    TT_ASSERT_EQ_INT(failed, 0);
    TT_ASSERT_EQ_INT(got, n); /* nothing lost, nothing repeated */
    TT_ASSERT(disc >= 1);
    for (int i = 0; i < n; i++) {
        TT_ASSERT_MSG(w.rev[i] == revs[i], "event %d: revision %lld, expected %lld", i,
                      (long long)w.rev[i], (long long)revs[i]);
        TT_ASSERT_EQ_INT(w.type[i], types[i]);
        TT_ASSERT_STR(w.key[i], keys[i]);
        if (types[i] == TS_ETCD_EV_PUT) TT_ASSERT_STR(w.val[i], vals[i]);
    }
    fprintf(stderr,
            "    watch: %d events before SIGKILL + %d written right after the restart, all %d "
            "delivered once in order (%d disconnect notice%s); etcd back %lld ms after the "
            "kill, last event delivered %lld ms after it was back\n",
            phase1, n - phase1, got, disc, disc == 1 ? "" : "s", (long long)(t_up - t_kill),
            (long long)(t_all - t_up));
    pthread_mutex_destroy(&w.mu);
    ts_etcd_destroy(c);
}

TT_TEST(compacted)
{
    ts_etcd *c = client_for(single_ep, 5000);
    int64_t r1, r2, r3;
    EOK(ts_etcd_put(c, "cw/a", 4, "1", 1, 0, &r1, err, sizeof(err)));
    EOK(ts_etcd_put(c, "cw/a", 4, "2", 1, 0, &r2, err, sizeof(err)));
    EOK(ts_etcd_put(c, "cw/a", 4, "3", 1, 0, &r3, err, sizeof(err)));
    EOK(ts_etcd_compact(c, r3, err, sizeof(err)));
    /* a read below the compaction is refused with COMPACTED */
    ts_etcd_op old = {.type = TS_ETCD_OP_RANGE, .key = "cw/a", .key_len = 4, .revision = r1};
    ts_etcd_resp r;
    TT_ASSERT_EQ_INT(ts_etcd_do(c, &old, &r, err, sizeof(err)), TS_ETCD_E_COMPACTED);
    static wrec w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    ts_etcd_watch_opts wo = {.key = "cw/a", .key_len = 4, .start_revision = r1, .cb = on_watch,
                             .arg = &w};
    ts_etcd_watch *wt;
    EOK(ts_etcd_watch_start(c, &wo, &wt, err, sizeof(err)));
    int64_t t0 = now_ms();
    int compacted = 0;
    while (now_ms() - t0 < 5000) {
        pthread_mutex_lock(&w.mu);
        compacted = w.compacted;
        pthread_mutex_unlock(&w.mu);
        if (compacted) break;
        sleep_ms(10);
    }
    ts_etcd_watch_stop(wt);
    TT_ASSERT_EQ_INT(compacted, 1);
    TT_ASSERT_EQ_INT(w.compact_rev, r3);
    TT_ASSERT_EQ_INT(w.n, 0);
    TT_ASSERT(strstr(w.last_msg, "compacted"));
    /* the caller's recovery: re-read, watch from the read's revision + 1 */
    EOK(ts_etcd_get(c, "cw/a", 4, 0, 0, &r, err, sizeof(err)));
    TT_ASSERT_STR(r.kvs[0].value, "3");
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    wo.start_revision = r.revision + 1;
    ts_etcd_resp_free(&r);
    EOK(ts_etcd_watch_start(c, &wo, &wt, err, sizeof(err)));
    int64_t r4;
    EOK(ts_etcd_put(c, "cw/a", 4, "4", 1, 0, &r4, err, sizeof(err)));
    TT_ASSERT(wait_events(&w, 1, 5000));
    ts_etcd_watch_stop(wt);
    TT_ASSERT_EQ_INT(w.rev[0], r4);
    TT_ASSERT_STR(w.val[0], "4");
    pthread_mutex_destroy(&w.mu);
    ts_etcd_destroy(c);
}

/* A watch stopped while it waits, and one whose stream is silent, stop at once. */
TT_TEST(watch_stop)
{
    ts_etcd *c = client_for(single_ep, 5000);
    static wrec w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    ts_etcd_watch_opts wo = {.key = "idle/", .key_len = 5, .prefix = 1, .cb = on_watch,
                             .arg = &w};
    ts_etcd_watch *wt;
    EOK(ts_etcd_watch_start(c, &wo, &wt, err, sizeof(err)));
    sleep_ms(300);
    TT_ASSERT(ts_etcd_watch_next_revision(wt) > 0); /* "from now" resolved at creation */
    int64_t t0 = now_ms();
    ts_etcd_watch_stop(wt);
    int64_t stop_ms = now_ms() - t0;
    TT_ASSERT_MSG(stop_ms < 1000, "stop took %lld ms", (long long)stop_ms);
    TT_ASSERT_EQ_INT(w.n, 0);
    pthread_mutex_destroy(&w.mu);
    ts_etcd_destroy(c);
}

/* ------------------------------------------------------------------------
 * deadlines and a dead endpoint
 * ------------------------------------------------------------------------ */
TT_TEST(deadline)
{
    /* a socket that listens and never accepts: TCP connects, nothing answers */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    TT_ASSERT(fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) && !listen(fd, 16) &&
              !getsockname(fd, (struct sockaddr *)&a, &l));
    char hole[64], list[160];
    snprintf(hole, sizeof(hole), "127.0.0.1:%d", ntohs(a.sin_port));

    ts_etcd_opts o;
    ts_etcd_opts_default(&o);
    o.endpoints = hole;
    o.op_timeout_ms = 1200;
    o.request_timeout_ms = 500;
    ts_etcd *c;
    EOK(ts_etcd_create(&o, &c, err, sizeof(err)));
    int64_t t0 = now_ms();
    ts_etcd_status st = ts_etcd_put(c, "dl/a", 4, "x", 1, 0, NULL, err, sizeof(err));
    int64_t took = now_ms() - t0;
    TT_ASSERT_EQ_INT(st, TS_ETCD_E_TIMEOUT);
    TT_ASSERT(ts_etcd_status_is_retriable(st));
    TT_ASSERT_MSG(took < o.op_timeout_ms + 1000, "took %lld ms for a %lld ms deadline",
                  (long long)took, (long long)o.op_timeout_ms);
    TT_ASSERT_MSG(strstr(err, hole) && strstr(err, "put") && strstr(err, "dl/a"), "message: %s",
                  err);
    fprintf(stderr, "    silent endpoint: failed after %lld ms (deadline %lld): %s\n",
            (long long)took, (long long)o.op_timeout_ms, err);
    ts_etcd_destroy(c);

    /* [silent, live]: the call moves on and succeeds; the live one stays current */
    snprintf(list, sizeof(list), "%s,%s", hole, single_ep);
    o.endpoints = list;
    o.op_timeout_ms = 3000;
    EOK(ts_etcd_create(&o, &c, err, sizeof(err)));
    t0 = now_ms();
    EOK(ts_etcd_put(c, "dl/a", 4, "x", 1, 0, NULL, err, sizeof(err)));
    int64_t first = now_ms() - t0;
    TT_ASSERT_STR(ts_etcd_current_endpoint(c), single_ep);
    t0 = now_ms();
    EOK(ts_etcd_put(c, "dl/a", 4, "y", 1, 0, NULL, err, sizeof(err)));
    int64_t second = now_ms() - t0;
    ts_etcd_stats s;
    ts_etcd_get_stats(c, &s);
    TT_ASSERT(s.failovers >= 1); /* 1 unless the live member was slow too */
    fprintf(stderr, "    [silent, live]: first put %lld ms (one %lld ms attempt lost), next %lld ms\n",
            (long long)first, (long long)o.request_timeout_ms, (long long)second);
    ts_etcd_destroy(c);

    /* [refused, live]: a closed port costs nothing */
    snprintf(list, sizeof(list), "127.0.0.1:%d,%s", free_port(), single_ep);
    o.endpoints = list;
    EOK(ts_etcd_create(&o, &c, err, sizeof(err)));
    t0 = now_ms();
    EOK(ts_etcd_put(c, "dl/a", 4, "z", 1, 0, NULL, err, sizeof(err)));
    fprintf(stderr, "    [refused, live]: put %lld ms\n", (long long)(now_ms() - t0));
    TT_ASSERT_STR(ts_etcd_current_endpoint(c), single_ep);
    ts_etcd_destroy(c);

    /* a keeper that cannot reach etcd reports the lease lost once its TTL has
     * passed since the last keepalive answered (here: the grant) */
    {
        ts_etcd *live = client_for(single_ep, 5000);
        int64_t id;
        EOK(ts_etcd_lease_grant(live, 2, 0, &id, NULL, err, sizeof(err)));
        o.endpoints = hole;
        o.op_timeout_ms = 1000;
        EOK(ts_etcd_create(&o, &c, err, sizeof(err)));
        lost_rec lr = {0};
        ts_etcd_keeper *k;
        t0 = now_ms();
        EOK(ts_etcd_keeper_start(c, id, 2, on_lost, &lr, &k, err, sizeof(err)));
        while (!ts_etcd_keeper_lost(k) && now_ms() - t0 < 8000) sleep_ms(20);
        int64_t lost_ms = now_ms() - t0;
        TT_ASSERT(ts_etcd_keeper_lost(k));
        TT_ASSERT_EQ_INT(atomic_load(&lr.calls), 1);
        TT_ASSERT(ts_etcd_status_is_retriable(lr.why));
        TT_ASSERT_MSG(strstr(lr.msg, "TTL") && strstr(lr.msg, hole), "message: %s", lr.msg);
        TT_ASSERT_EQ_INT(ts_etcd_keeper_renewals(k), 0);
        /* never answered: the send time stays the keeper's start */
        TT_ASSERT(ts_etcd_keeper_alive_ms(k) <= t0 + 100);
        fprintf(stderr, "    keeper cut off from etcd: lease reported lost after %lld ms (TTL 2 s): %s\n",
                (long long)lost_ms, lr.msg);
        ts_etcd_keeper_stop(k);
        ts_etcd_destroy(c);
        ts_etcd_lease_revoke(live, id, err, sizeof(err));
        ts_etcd_destroy(live);
    }

    /* a watch on [silent, live]: the silent member never creates it, so the
     * watch moves on within request_timeout_ms; then idle_timeout_ms makes a
     * quiet stream reconnect, still without losing anything */
    {
        snprintf(list, sizeof(list), "%s,%s", hole, single_ep);
        o.endpoints = list;
        o.op_timeout_ms = 3000;
        o.request_timeout_ms = 400;
        EOK(ts_etcd_create(&o, &c, err, sizeof(err)));
        ts_etcd *live = client_for(single_ep, 5000);
        static wrec w;
        memset(&w, 0, sizeof(w));
        pthread_mutex_init(&w.mu, NULL);
        ts_etcd_resp r;
        EOK(ts_etcd_get(live, "dlw/", 4, 1, 0, &r, err, sizeof(err)));
        ts_etcd_watch_opts wo = {.key = "dlw/", .key_len = 4, .prefix = 1,
                                 .start_revision = r.revision + 1, .idle_timeout_ms = 300,
                                 .cb = on_watch, .arg = &w};
        ts_etcd_resp_free(&r);
        ts_etcd_watch *wt;
        t0 = now_ms();
        EOK(ts_etcd_watch_start(c, &wo, &wt, err, sizeof(err)));
        int64_t rv;
        EOK(ts_etcd_put(live, "dlw/1", 5, "a", 1, 0, &rv, err, sizeof(err)));
        TT_ASSERT(wait_events(&w, 1, 5000));
        int64_t first_ms = now_ms() - t0;
        pthread_mutex_lock(&w.mu);
        int d1 = w.disconnects;
        char msg1[512];
        snprintf(msg1, sizeof(msg1), "%s", w.last_msg);
        pthread_mutex_unlock(&w.mu);
        TT_ASSERT(d1 >= 1);
        TT_ASSERT_MSG(strstr(msg1, "not created") && strstr(msg1, hole), "message: %s", msg1);
        sleep_ms(1000); /* silence: the idle timeout reconnects a few times */
        EOK(ts_etcd_put(live, "dlw/2", 5, "b", 1, 0, &rv, err, sizeof(err)));
        TT_ASSERT(wait_events(&w, 2, 5000));
        sleep_ms(200);
        ts_etcd_watch_stop(wt);
        TT_ASSERT_EQ_INT(w.n, 2);
        TT_ASSERT_EQ_INT(w.bad, 0);
        TT_ASSERT(w.rev[1] == rv);
        TT_ASSERT(w.disconnects > d1);
        fprintf(stderr,
                "    watch on [silent, live]: first event %lld ms after start (%s); %d "
                "reconnects in all with a 300 ms idle timeout, 2/2 events once\n",
                (long long)first_ms, msg1, w.disconnects);
        pthread_mutex_destroy(&w.mu);
        ts_etcd_destroy(live);
        ts_etcd_destroy(c);
        o.request_timeout_ms = 500;
    }

    /* bad endpoint lists are refused up front */
    const char *bad[] = {"", "localhost", "h:", ":1", "h:x", "https://h:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.endpoints = bad[i];
        TT_ASSERT_EQ_INT(ts_etcd_create(&o, &c, err, sizeof(err)), TS_ETCD_E_INVAL);
    }
    o.endpoints = "etcd://127.0.0.1:1,http://127.0.0.1:2/";
    EOK(ts_etcd_create(&o, &c, err, sizeof(err)));
    TT_ASSERT_STR(ts_etcd_current_endpoint(c), "127.0.0.1:1");
    ts_etcd_destroy(c);
    close(fd);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    if (!find_etcd()) {
        printf("SKIP: no etcd binary (install etcd-server, or set ETCD_BIN)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(kill_all);
    tt_tmpdir(tmp_root, sizeof(tmp_root), "etcd");
    ts_etcd_global_init();
    member_init(&single, "s1");
    endpoint_of(&single, single_ep, sizeof(single_ep));
    if (!start_single()) {
        fprintf(stderr, "etcd did not come up on %s; see %s/etcd.log\n", single_ep, single.dir);
        kill_all();
        return 1;
    }
    TT_RUN(kv);
    TT_RUN(txn);
    TT_RUN(lease);
    TT_RUN(watch);
    TT_RUN(compacted);
    TT_RUN(watch_stop);
    TT_RUN(deadline);
    kill_all();
    int rc = tt_summary();
    if (rc == 0 && !getenv("TS_KEEP_TMP"))
        rm_rf(tmp_root);
    else
        fprintf(stderr, "etcd logs kept in %s\n", tmp_root);
    return rc;
}
