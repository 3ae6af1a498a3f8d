/*
 * test_topic_names.c — the topic-name rule: include/tierstore_names.h, the
 * one implementation used by the engine, the index (manifest writer and
 * parser) and the broker, on a table of names and on every single byte;
 * then the manifest JSON writer and parser applying that same rule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "tierstore_names.h"
#include "tt.h"

static char at249[251], at250[251], bad249[251];
static const char *const valid[] = {"a", "A-z_0.9", "...", ".a", "..a", "orders", "x-1_y.z", at249};
static const char *const invalid[] = {"",  ".",  "..", "a/b", "a b", "a\\b", "é",  "a*",
                                      "a:b", "\t", at250, bad249, "a\n"};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void make_long_names(void)
{
    memset(at249, 'a', 249);
    at249[249] = '\0';
    memset(at250, 'b', 250);
    at250[250] = '\0';
    memcpy(bad249, at249, 250);
    bad249[248] = '/';
}

TT_TEST(topic_name_table)
{
    make_long_names();
    for (size_t i = 0; i < N(valid); i++)
        TT_ASSERT_MSG(ts_topic_name_valid(valid[i]), "'%.20s' should be valid", valid[i]);
    for (size_t i = 0; i < N(invalid); i++)
        TT_ASSERT_MSG(!ts_topic_name_valid(invalid[i]), "entry %zu should be invalid", i);
    TT_ASSERT(!ts_topic_name_valid(NULL));
    /* Every single byte, as a one-character name: only [A-Za-z0-9_-] (a lone
     * "." is refused). */
    for (int c = 1; c < 256; c++) {
        char one[2] = {(char)c, '\0'};
        int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
        TT_ASSERT_MSG(ts_topic_name_valid(one) == want, "byte %d", c);
    }
}

/* The manifest writer refuses what the rule refuses, and a valid name comes
 * back from the parser unchanged. */
TT_TEST(manifest_applies_the_rule)
{
    make_long_names();
    char *json = NULL;
    size_t len = 0;
    for (size_t i = 0; i < N(valid); i++) {
        TT_ASSERT_EQ_INT(ts_manifest_to_json(valid[i], 0, 1, 0, NULL, 0, &json, &len), TS_OK);
        char topic[256], err[256];
        int32_t part = -1;
        uint64_t version = 0;
        int64_t start = -1;
        ts_segment_meta *segs = NULL;
        size_t n = 0;
        TT_ASSERT_EQ_INT(ts_manifest_from_json(json, len, topic, sizeof(topic), &part, &version,
                                               &start, &segs, &n, err, sizeof(err)),
                         TS_OK);
        TT_ASSERT_STR(topic, valid[i]);
        ts_index_snapshot_free(segs, n);
        free(json);
        json = NULL;
    }
    for (size_t i = 0; i < N(invalid); i++)
        TT_ASSERT_MSG(ts_manifest_to_json(invalid[i], 0, 1, 0, NULL, 0, &json, &len) == TS_E_INVAL,
                      "writer accepted entry %zu", i);
}

/* A manifest from the bucket naming a topic the rule refuses is corrupt,
 * and the message says which field and why. */
TT_TEST(manifest_parse_refuses_bad_topic)
{
    char *json = NULL;
    size_t len = 0;
    TT_ASSERT_EQ_INT(ts_manifest_to_json("ab", 0, 1, 0, NULL, 0, &json, &len), TS_OK);
    char *at = strstr(json, "\"ab\"");
    TT_ASSERT(at != NULL);
    at[2] = '/'; /* "a/" : same length, now outside the rule */
    char topic[256], err[256] = "";
    int32_t part;
    uint64_t version;
    int64_t start;
    ts_segment_meta *segs = NULL;
    size_t n = 0;
    TT_ASSERT_EQ_INT(ts_manifest_from_json(json, len, topic, sizeof(topic), &part, &version, &start,
                                           &segs, &n, err, sizeof(err)),
                     TS_E_CORRUPT);
    TT_ASSERT_MSG(strstr(err, "topic") && strstr(err, "Kafka's rules"), "message: %s", err);
    free(json);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(topic_name_table);
    TT_RUN(manifest_applies_the_rule);
    TT_RUN(manifest_parse_refuses_bad_topic);
    return tt_summary();
}
