/*
 * test_topic_names.c — the topic-name rule: include/tierstore_names.h (used
 * by the engine and the broker) on a table of names, and the copy that
 * remains in index/manifest_json.c (ts_manifest_topic_valid) agreeing with
 * it on every entry until the index rewrite folds it in.
 */
#include <stdio.h>
#include <string.h>

#include "index/manifest_json.h"
#include "tierstore_names.h"
#include "tt.h"

TT_TEST(topic_name_table)
{
    char at249[251], at250[251], bad249[251];
    memset(at249, 'a', 249);
    at249[249] = '\0';
    memset(at250, 'b', 250);
    at250[250] = '\0';
    memcpy(bad249, at249, 250);
    bad249[248] = '/';
    static const char *const valid[] = {"a", "A-z_0.9", "...", ".a", "..a", "orders", "x-1_y.z"};
    const char *invalid[] = {"",  ".",  "..", "a/b", "a b", "a\\b", "é", "a*", "a:b",
                             "\t", at250, bad249, "a\n"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        TT_ASSERT_MSG(ts_topic_name_valid(valid[i]), "'%s' should be valid", valid[i]);
        TT_ASSERT_MSG(ts_manifest_topic_valid(valid[i]), "index copy: '%s'", valid[i]);
    }
    TT_ASSERT(ts_topic_name_valid(at249));
    TT_ASSERT(ts_manifest_topic_valid(at249));
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        TT_ASSERT_MSG(!ts_topic_name_valid(invalid[i]), "entry %zu should be invalid", i);
        TT_ASSERT_MSG(!ts_manifest_topic_valid(invalid[i]), "index copy: entry %zu", i);
    }
    TT_ASSERT(!ts_topic_name_valid(NULL));
    TT_ASSERT(!ts_manifest_topic_valid(NULL));
    /* Every single byte, as a one-character name: both copies agree. */
    for (int c = 1; c < 256; c++) {
        char one[2] = {(char)c, '\0'};
        TT_ASSERT_MSG(ts_topic_name_valid(one) == ts_manifest_topic_valid(one), "byte %d", c);
    }
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(topic_name_table);
    return tt_summary();
}
