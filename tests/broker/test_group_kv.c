/*
 * test_group_kv.c — the coordinator's etcd records (broker/group_kv.c):
 * Java's String.hashCode and Kafka's partitionFor on known values (the
 * Integer.MIN_VALUE case included), keys with '/' in the group id, values
 * round-tripped with hostile metadata and int64 beyond a double's 2^53,
 * refused values, the transaction cutter's op and byte bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/group_kv.h"
#include "tests/tt.h"

TT_TEST(java_hash_known_values)
{
    /* Values of Java's "...".hashCode(). */
    TT_ASSERT_EQ_INT(group_java_hash(""), 0);
    TT_ASSERT_EQ_INT(group_java_hash("hello"), 99162322);
    TT_ASSERT_EQ_INT(group_java_hash("polygenelubricants"), INT32_MIN);
    TT_ASSERT_EQ_INT(group_java_hash("\xc3\xa9"), 233);                  /* é */
    TT_ASSERT_EQ_INT(group_java_hash("\xf0\x9f\x98\x80"), 55357 * 31 + 56832); /* U+1F600 */
    TT_ASSERT_EQ_INT(group_java_hash("\xff"), 0xFFFD);                   /* not UTF-8 */
}

TT_TEST(partition_for_is_kafkas)
{
    TT_ASSERT_EQ_INT(group_partition_for("hello", 50), 99162322 % 50);
    TT_ASSERT_EQ_INT(group_partition_for("polygenelubricants", 50), 0); /* abs(MIN) = 0 */
    /* A negative hash: "cluster-group".hashCode() < 0 is taken by abs. */
    int32_t h = group_java_hash("cluster-group");
    int32_t want = (h < 0 ? -h : h) % 7;
    TT_ASSERT_EQ_INT(group_partition_for("cluster-group", 7), want);
    for (int i = 0; i < 1000; i++) {
        char g[32];
        snprintf(g, sizeof g, "g%d", i);
        int32_t p = group_partition_for(g, 50);
        TT_ASSERT(p >= 0 && p < 50);
    }
}

TT_TEST(keys_split_from_the_end)
{
    char k[256];
    int n = group_kv_key(k, sizeof k, "/ts/", "a/b/c", "topic.x", 12);
    TT_ASSERT_STR(k, "/ts/groups/a/b/c/topic.x/12");
    TT_ASSERT_EQ_INT(n, (int)strlen(k));
    char *g, *t;
    int32_t p;
    size_t pl = strlen("/ts/groups/");
    TT_ASSERT_EQ_INT(group_kv_key_parse(k, (size_t)n, pl, &g, &t, &p), 0);
    TT_ASSERT_STR(g, "a/b/c");
    TT_ASSERT_STR(t, "topic.x");
    TT_ASSERT_EQ_INT(p, 12);
    free(g);
    free(t);
    const char *bad[] = {"/ts/groups/", "/ts/groups/g/t", "/ts/groups/g/t/", "/ts/groups//t/1",
                         "/ts/groups/g//1", "/ts/groups/g/t/x1", "/ts/groups/g/t/-1",
                         "/ts/groups/g/t/01", "/ts/groups/g/t/99999999999", "/ts/groups/t/1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TT_ASSERT_MSG(group_kv_key_parse(bad[i], strlen(bad[i]), pl, &g, &t, &p) == -1,
                      "accepted %s", bad[i]);
    TT_ASSERT_EQ_INT(group_kv_key(k, 10, "/ts/", "g", "t", 1), -1);
}

TT_TEST(values_round_trip)
{
    group_kv_value v = {.offset = 42, .leader_epoch = 7, .metadata = "a\"b\n\x01{}",
                        .commit_ms = 1764633600123LL};
    char *s = group_kv_encode(&v);
    TT_ASSERT(s);
    group_kv_value o;
    TT_ASSERT_EQ_INT(group_kv_decode(s, strlen(s), &o), 0);
    TT_ASSERT(o.offset == 42 && o.leader_epoch == 7 && o.commit_ms == 1764633600123LL);
    TT_ASSERT_STR(o.metadata, v.metadata);
    free(o.metadata);
    free(s);
    /* Beyond 2^53: a string, still exact. No metadata: null. */
    v = (group_kv_value){.offset = INT64_MAX - 1, .leader_epoch = -1, .metadata = NULL};
    s = group_kv_encode(&v);
    TT_ASSERT(s && strstr(s, "\"9223372036854775806\"") && strstr(s, "\"metadata\":null"));
    TT_ASSERT_EQ_INT(group_kv_decode(s, strlen(s), &o), 0);
    TT_ASSERT(o.offset == INT64_MAX - 1 && o.leader_epoch == -1 && !o.metadata);
    free(s);
}

TT_TEST(bad_values_are_refused)
{
    const char *bad[] = {"", "[]", "{}", "{\"offset\":1.5}", "{\"offset\":\"12x\"}",
                         "{\"offset\":1,\"leader_epoch\":\"e\"}", "{\"offset\":1,\"metadata\":3}",
                         "{\"offset\":1,\"leader_epoch\":-5}", "{\"offset\":1e300}", "{\"offset\":"};
    group_kv_value o;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TT_ASSERT_MSG(group_kv_decode(bad[i], strlen(bad[i]), &o) == -1, "accepted %s", bad[i]);
    TT_ASSERT_EQ_INT(group_kv_decode("{\"offset\":5}", 12, &o), 0); /* the rest optional */
    TT_ASSERT(o.offset == 5 && o.leader_epoch == -1 && !o.metadata);
}

TT_TEST(chunks_respect_ops_and_bytes)
{
    size_t sizes[300];
    for (int i = 0; i < 300; i++) sizes[i] = 100;
    TT_ASSERT_EQ_INT((int)group_kv_chunk(sizes, 300, 128, 1 << 20), 128);
    TT_ASSERT_EQ_INT((int)group_kv_chunk(sizes + 256, 44, 128, 1 << 20), 44);
    TT_ASSERT_EQ_INT((int)group_kv_chunk(sizes, 300, 128, 1000), 10);
    TT_ASSERT_EQ_INT((int)group_kv_chunk(sizes, 0, 128, 1000), 0);
    sizes[0] = 5000; /* alone over the byte bound: still one */
    TT_ASSERT_EQ_INT((int)group_kv_chunk(sizes, 300, 128, 1000), 1);
    /* 300 records in 128 + 128 + 44: as few transactions as the bound allows */
    sizes[0] = 100;
    size_t at = 0, ntx = 0;
    while (at < 300) {
        at += group_kv_chunk(sizes + at, 300 - at, 128, 1 << 20);
        ntx++;
    }
    TT_ASSERT_EQ_INT((int)ntx, 3);
}

TT_TEST(producer_id_block_value)
{
    char *s = pid_block_encode(1000000000001000LL);
    TT_ASSERT(s);
    TT_ASSERT_STR(s, "{\"next\":1000000000001000}");
    int64_t n = 0;
    TT_ASSERT_EQ_INT(pid_block_decode(s, strlen(s), &n), 0);
    TT_ASSERT(n == 1000000000001000LL);
    free(s);
    TT_ASSERT_EQ_INT(pid_block_decode("{\"next\":\"x\"}", 12, &n), -1);
    TT_ASSERT_EQ_INT(pid_block_decode("nope", 4, &n), -1);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(java_hash_known_values);
    TT_RUN(partition_for_is_kafkas);
    TT_RUN(keys_split_from_the_end);
    TT_RUN(values_round_trip);
    TT_RUN(bad_values_are_refused);
    TT_RUN(chunks_respect_ops_and_bytes);
    TT_RUN(producer_id_block_value);
    return tt_summary();
}
