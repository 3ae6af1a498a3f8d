/*
 * test_acl.c — Kafka's ACL rules as broker/acl.c implements them: literal,
 * wildcard and prefixed patterns; DENY beats ALLOW; the implied operations
 * (READ/WRITE/DELETE/ALTER -> DESCRIBE, ALTER_CONFIGS -> DESCRIBE_CONFIGS);
 * principals User:x and User:*, hosts; super.users; allow.everyone.if.no.
 * acl.found only where no binding applies; KIP-679's "WRITE on any topic";
 * the DescribeAcls/DeleteAcls filters (ANY, MATCH, LITERAL, PREFIXED);
 * validation of bindings; the JSON record and the etcd key round trip.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"
#include "tt.h"

static acl_entry B(int rtype, int ptype, const char *name, const char *principal,
                   const char *host, int op, int perm)
{
    acl_entry e = {(int8_t)rtype, (int8_t)ptype, (int8_t)op, (int8_t)perm,
                   (char *)name,  (char *)principal, (char *)host};
    return e;
}

static void add(acl_set *s, acl_entry e) { TT_ASSERT_EQ_INT(acl_set_add(s, &e), 1); }

static const acl_policy STRICT = {NULL, 0};

static int can(const acl_set *s, const char *who, int op, int rtype, const char *name)
{
    return acl_decide(s, &STRICT, who, "10.0.0.1", op, rtype, name);
}

TT_TEST(literal_read_implies_describe_only)
{
    acl_set s;
    acl_set_init(&s);
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "orders", "User:alice", "*", ACL_OP_READ,
              ACL_PERM_ALLOW));
    TT_ASSERT(can(&s, "User:alice", ACL_OP_READ, ACL_RES_TOPIC, "orders"));
    TT_ASSERT(can(&s, "User:alice", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "orders"));
    TT_ASSERT(!can(&s, "User:alice", ACL_OP_WRITE, ACL_RES_TOPIC, "orders"));
    TT_ASSERT(!can(&s, "User:alice", ACL_OP_DELETE, ACL_RES_TOPIC, "orders"));
    TT_ASSERT(!can(&s, "User:alice", ACL_OP_READ, ACL_RES_TOPIC, "orders2"));
    TT_ASSERT(!can(&s, "User:bob", ACL_OP_READ, ACL_RES_TOPIC, "orders"));
    TT_ASSERT(!can(&s, "User:alice", ACL_OP_READ, ACL_RES_GROUP, "orders"));
    /* a duplicate is not added twice */
    acl_entry dup = B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "orders", "User:alice", "*", ACL_OP_READ,
                      ACL_PERM_ALLOW);
    TT_ASSERT_EQ_INT(acl_set_add(&s, &dup), 0);
    TT_ASSERT_EQ_INT((int)s.n, 1);
    acl_set_free(&s);
}

TT_TEST(implied_operations)
{
    acl_set s;
    acl_set_init(&s);
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_ALTER_CONFIGS,
              ACL_PERM_ALLOW));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:b", "*", ACL_OP_ALL, ACL_PERM_ALLOW));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:c", "*", ACL_OP_DESCRIBE,
              ACL_PERM_ALLOW));
    TT_ASSERT(can(&s, "User:a", ACL_OP_DESCRIBE_CONFIGS, ACL_RES_TOPIC, "t"));
    TT_ASSERT(!can(&s, "User:a", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "t"));
    for (int op = ACL_OP_READ; op <= ACL_OP_IDEMPOTENT_WRITE; op++)
        TT_ASSERT_MSG(can(&s, "User:b", op, ACL_RES_TOPIC, "t"), "ALL grants %s", acl_op_name(op));
    TT_ASSERT(!can(&s, "User:c", ACL_OP_READ, ACL_RES_TOPIC, "t")); /* no upward implication */
    acl_set_free(&s);
}

TT_TEST(deny_beats_allow)
{
    acl_set s;
    acl_set_init(&s);
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:*", "*", ACL_OP_ALL, ACL_PERM_ALLOW));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_PREFIXED, "secret-", "User:eve", "*", ACL_OP_READ,
              ACL_PERM_DENY));
    TT_ASSERT(can(&s, "User:eve", ACL_OP_READ, ACL_RES_TOPIC, "public"));
    TT_ASSERT(!can(&s, "User:eve", ACL_OP_READ, ACL_RES_TOPIC, "secret-x"));
    TT_ASSERT(can(&s, "User:eve", ACL_OP_WRITE, ACL_RES_TOPIC, "secret-x")); /* only READ denied */
    /* DENY READ does not deny DESCRIBE (Kafka: denies are matched exactly or ALL) */
    TT_ASSERT(can(&s, "User:eve", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "secret-x"));
    TT_ASSERT(can(&s, "User:bob", ACL_OP_READ, ACL_RES_TOPIC, "secret-x"));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "secret-x", "User:bob", "10.0.0.1", ACL_OP_ALL,
              ACL_PERM_DENY));
    TT_ASSERT(!can(&s, "User:bob", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "secret-x"));
    /* the same principal from another host is still allowed */
    TT_ASSERT(acl_decide(&s, &STRICT, "User:bob", "10.0.0.2", ACL_OP_READ, ACL_RES_TOPIC,
                         "secret-x"));
    acl_set_free(&s);
}

TT_TEST(prefixed_and_hosts)
{
    acl_set s;
    acl_set_init(&s);
    add(&s, B(ACL_RES_GROUP, ACL_PAT_PREFIXED, "app-", "User:alice", "192.168.1.5",
              ACL_OP_READ, ACL_PERM_ALLOW));
    TT_ASSERT(acl_decide(&s, &STRICT, "User:alice", "192.168.1.5", ACL_OP_READ, ACL_RES_GROUP,
                         "app-1"));
    TT_ASSERT(acl_decide(&s, &STRICT, "User:alice", "192.168.1.5", ACL_OP_READ, ACL_RES_GROUP,
                         "app-"));
    TT_ASSERT(!acl_decide(&s, &STRICT, "User:alice", "192.168.1.5", ACL_OP_READ, ACL_RES_GROUP,
                          "ap"));
    TT_ASSERT(!acl_decide(&s, &STRICT, "User:alice", "192.168.1.6", ACL_OP_READ, ACL_RES_GROUP,
                          "app-1"));
    acl_set_free(&s);
}

TT_TEST(super_users_and_no_acl_found)
{
    acl_set s;
    acl_set_init(&s);
    acl_policy p = {" User:admin ;User:ops", 0};
    TT_ASSERT(acl_decide(&s, &p, "User:admin", "h", ACL_OP_DELETE, ACL_RES_TOPIC, "x"));
    TT_ASSERT(acl_decide(&s, &p, "User:ops", "h", ACL_OP_ALTER, ACL_RES_CLUSTER, "kafka-cluster"));
    TT_ASSERT(!acl_decide(&s, &p, "User:adm", "h", ACL_OP_DELETE, ACL_RES_TOPIC, "x"));
    TT_ASSERT(!acl_decide(&s, &p, "User:admin2", "h", ACL_OP_DELETE, ACL_RES_TOPIC, "x"));
    acl_policy open = {NULL, 1};
    TT_ASSERT(acl_decide(&s, &open, "User:x", "h", ACL_OP_READ, ACL_RES_TOPIC, "free"));
    /* once a binding applies to the resource, allow.everyone no longer does */
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "guarded", "User:alice", "*", ACL_OP_READ,
              ACL_PERM_ALLOW));
    TT_ASSERT(!acl_decide(&s, &open, "User:x", "h", ACL_OP_READ, ACL_RES_TOPIC, "guarded"));
    TT_ASSERT(acl_decide(&s, &open, "User:x", "h", ACL_OP_READ, ACL_RES_TOPIC, "free"));
    acl_set_free(&s);
}

TT_TEST(write_on_any_topic)
{
    acl_set s;
    acl_set_init(&s);
    TT_ASSERT(!acl_decide_any(&s, &STRICT, "User:p", "h", ACL_OP_WRITE, ACL_RES_TOPIC));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_PREFIXED, "logs-", "User:p", "*", ACL_OP_WRITE,
              ACL_PERM_ALLOW));
    TT_ASSERT(acl_decide_any(&s, &STRICT, "User:p", "h", ACL_OP_WRITE, ACL_RES_TOPIC));
    TT_ASSERT(!acl_decide_any(&s, &STRICT, "User:q", "h", ACL_OP_WRITE, ACL_RES_TOPIC));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_PREFIXED, "log", "User:p", "*", ACL_OP_WRITE,
              ACL_PERM_DENY));
    TT_ASSERT(!acl_decide_any(&s, &STRICT, "User:p", "h", ACL_OP_WRITE, ACL_RES_TOPIC));
    acl_set_free(&s);
}

TT_TEST(filters)
{
    acl_set s;
    acl_set_init(&s);
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "a", "User:x", "*", ACL_OP_READ, ACL_PERM_ALLOW));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:x", "*", ACL_OP_READ, ACL_PERM_ALLOW));
    add(&s, B(ACL_RES_TOPIC, ACL_PAT_PREFIXED, "a", "User:y", "*", ACL_OP_WRITE, ACL_PERM_DENY));
    add(&s, B(ACL_RES_GROUP, ACL_PAT_LITERAL, "a", "User:x", "*", ACL_OP_READ, ACL_PERM_ALLOW));
    struct {
        acl_entry f;
        int want;
    } cases[] = {
        {B(ACL_RES_ANY, ACL_PAT_ANY, NULL, NULL, NULL, ACL_OP_ANY, ACL_PERM_ANY), 4},
        {B(ACL_RES_TOPIC, ACL_PAT_ANY, NULL, NULL, NULL, ACL_OP_ANY, ACL_PERM_ANY), 3},
        {B(ACL_RES_TOPIC, ACL_PAT_ANY, "a", NULL, NULL, ACL_OP_ANY, ACL_PERM_ANY), 2},
        {B(ACL_RES_TOPIC, ACL_PAT_MATCH, "abc", NULL, NULL, ACL_OP_ANY, ACL_PERM_ANY), 2},
        {B(ACL_RES_TOPIC, ACL_PAT_MATCH, "a", NULL, NULL, ACL_OP_ANY, ACL_PERM_ANY), 3},
        {B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "a", NULL, NULL, ACL_OP_ANY, ACL_PERM_ANY), 1},
        {B(ACL_RES_TOPIC, ACL_PAT_PREFIXED, NULL, NULL, NULL, ACL_OP_ANY, ACL_PERM_ANY), 1},
        {B(ACL_RES_ANY, ACL_PAT_ANY, NULL, "User:x", NULL, ACL_OP_READ, ACL_PERM_ALLOW), 3},
        {B(ACL_RES_ANY, ACL_PAT_ANY, NULL, NULL, NULL, ACL_OP_ANY, ACL_PERM_DENY), 1},
        {B(ACL_RES_ANY, ACL_PAT_ANY, NULL, NULL, "1.2.3.4", ACL_OP_ANY, ACL_PERM_ANY), 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int n = 0;
        for (size_t i = 0; i < s.n; i++) n += acl_filter_matches(&cases[c].f, &s.v[i]);
        TT_ASSERT_MSG(n == cases[c].want, "filter %zu matched %d, want %d", c, n, cases[c].want);
    }
    acl_entry del = B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:x", "*", ACL_OP_READ,
                      ACL_PERM_ALLOW);
    TT_ASSERT_EQ_INT(acl_set_remove(&s, &del), 1);
    TT_ASSERT_EQ_INT(acl_set_remove(&s, &del), 0);
    TT_ASSERT_EQ_INT((int)s.n, 3);
    acl_set_free(&s);
}

TT_TEST(validation)
{
    const char *why;
    acl_entry ok = B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_READ,
                     ACL_PERM_ALLOW);
    TT_ASSERT_EQ_INT(acl_entry_valid(&ok, &why), 0);
    acl_entry bad[] = {
        B(ACL_RES_ANY, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW),
        B(99, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_MATCH, "t", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW),
        B(ACL_RES_CLUSTER, ACL_PAT_LITERAL, "other", "User:a", "*", ACL_OP_ALTER, ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "alice", "*", ACL_OP_READ, ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:", "*", ACL_OP_READ, ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "example.com", ACL_OP_READ,
          ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_ANY, ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "*", 13, ACL_PERM_ALLOW),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:a", "*", ACL_OP_READ, ACL_PERM_ANY),
        B(ACL_RES_TOPIC, ACL_PAT_LITERAL, NULL, "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        TT_ASSERT_MSG(acl_entry_valid(&bad[i], &why) == -1 && why, "binding %zu accepted", i);
    }
    acl_entry v6 = B(ACL_RES_CLUSTER, ACL_PAT_LITERAL, "kafka-cluster", "User:a", "::1",
                     ACL_OP_ALTER, ACL_PERM_DENY);
    TT_ASSERT_EQ_INT(acl_entry_valid(&v6, &why), 0);
}

TT_TEST(record_and_key_round_trip)
{
    acl_entry e = B(ACL_RES_GROUP, ACL_PAT_PREFIXED, "a/b%c d", "User:CN=x,O=\"y\"", "10.1.2.3",
                    ACL_OP_DESCRIBE, ACL_PERM_DENY);
    char *j = acl_entry_json(&e);
    TT_ASSERT(j != NULL);
    acl_entry back;
    const char *why;
    TT_ASSERT_EQ_INT(acl_entry_from_json(j, strlen(j), &back, &why), 0);
    TT_ASSERT(acl_entry_equal(&e, &back));
    acl_entry_free(&back);
    free(j);
    char k[512];
    TT_ASSERT_EQ_INT(acl_entry_key(&e, k, sizeof k), 0);
    TT_ASSERT_STR(k, "acls/GROUP/PREFIXED/a%2Fb%25c%20d/User:CN=x,O=\"y\"/10.1.2.3/DESCRIBE/DENY");
    TT_ASSERT_EQ_INT(acl_entry_key(&e, k, 20), -1);
    /* records that are not bindings are refused with a reason */
    const char *junk[] = {
        "", "[]", "{}", "{\"resource_type\":\"TOPIC\"}",
        "{\"resource_type\":\"TOPIC\",\"pattern_type\":\"LITERAL\",\"name\":\"t\","
        "\"principal\":\"User:a\",\"host\":\"*\",\"operation\":\"ANY\",\"permission\":\"ALLOW\"}",
        "{\"resource_type\":\"TOPIC\",\"pattern_type\":\"LITERAL\",\"name\":7,"
        "\"principal\":\"User:a\",\"host\":\"*\",\"operation\":\"READ\",\"permission\":\"ALLOW\"}",
    };
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        why = NULL;
        TT_ASSERT_MSG(acl_entry_from_json(junk[i], strlen(junk[i]), &back, &why) == -1 && why,
                      "record %zu accepted", i);
    }
}

/* The index gives the decisions of the plain scan (a copy of the set
 * without its index), for random bindings and resources, across growth
 * (rebuilds) and removals. */
TT_TEST(index_matches_scan)
{
    static const char *names[] = {"a", "ab", "abc", "b", "*", "orders", "ord", "o", "x-1"};
    static const char *who[] = {"User:u1", "User:u2", "User:*"};
    static const char *hosts[] = {"*", "10.0.0.1", "10.0.0.2"};
    const int nn = 9;
    srand(7);
    acl_set s;
    acl_set_init(&s);
    for (int round = 0; round < 300; round++) {
        acl_entry e = B(ACL_RES_TOPIC + rand() % 2, ACL_PAT_LITERAL + rand() % 2,
                        names[rand() % nn], who[rand() % 3], hosts[rand() % 3],
                        ACL_OP_ALL + rand() % 11, ACL_PERM_DENY + (rand() % 4 != 0));
        if (rand() % 5 == 0)
            acl_set_remove(&s, &e);
        else
            TT_ASSERT(acl_set_add(&s, &e) >= 0);
        acl_set plain = s;
        plain.bucket = NULL;
        for (int q = 0; q < 40; q++) {
            const char *res[] = {"a", "abc", "abd", "b", "orders", "order", "zzz", "*", "x-1"};
            const char *name = res[rand() % 9];
            const char *pr = who[rand() % 2];
            const char *h = hosts[1 + rand() % 2];
            int op = ACL_OP_READ + rand() % 10, rt = ACL_RES_TOPIC + rand() % 2;
            acl_policy pol = {NULL, rand() % 2};
            TT_ASSERT_MSG(acl_decide(&s, &pol, pr, h, op, rt, name) ==
                              acl_decide(&plain, &pol, pr, h, op, rt, name),
                          "round %d: %s %s %s %d on %d '%s'", round, pr, h, acl_op_name(op), op,
                          rt, name);
        }
    }
    TT_ASSERT(s.bucket != NULL);
    acl_set_free(&s);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(literal_read_implies_describe_only);
    TT_RUN(implied_operations);
    TT_RUN(deny_beats_allow);
    TT_RUN(prefixed_and_hosts);
    TT_RUN(super_users_and_no_acl_found);
    TT_RUN(write_on_any_topic);
    TT_RUN(filters);
    TT_RUN(validation);
    TT_RUN(record_and_key_round_trip);
    TT_RUN(index_matches_scan);
    return tt_summary();
}
