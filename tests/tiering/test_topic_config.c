/*
 * test_topic_config.c — topic-level overrides (tiering/engine.c): only
 * Kafka's topic-level keys are accepted, every valid topic name (up to 249
 * chars) can hold them across a restart and a lost data dir, and data dirs
 * of older versions (.topics/<topic>.properties) keep working.
 */
#include "tiering/internal.h"
#include "tiering_test.h"

/* tiering_test.h's env opens the engine with log.retention.ms=-1, so a
 * deleted topic override or a reverted engine setting must come back as -1,
 * the value the engine was opened with; a fallback to the table's default
 * (604800000) instead would fail here. */
#define ENGINE_RETENTION_MS (-1)

static int64_t topic_int(env *e, const char *topic, const char *key)
{
    ts_config *c = ts_eng_topic_config(e->eng, topic);
    int64_t v = c ? ts_config_get_int(c, key) : -12345;
    ts_config_destroy(c);
    return v;
}

TT_TEST(broker_keys_are_not_topic_configs)
{
    env e;
    env_init(&e, NULL);
    TT_CHECK_OKE(env_open(&e), e.err);
    const char *bad[][2] = {{"log.dirs", "/etc"},
                            {"log.segment.bytes", "4096"},
                            {"message.max.bytes", "1000"},
                            {"log.retention.ms", "1"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *k[] = {bad[i][0]}, *v[] = {bad[i][1]};
        TT_CHECK_EQ_INT(ts_topic_set_config(e.eng, "t", k, v, 1, e.err, sizeof(e.err)),
                        TS_E_CONFIG);
        TT_CHECK_MSG(strstr(e.err, bad[i][0]) != NULL, "error does not name %s: %s", bad[i][0],
                     e.err);
    }
    /* nothing was persisted */
    char p[900];
    snprintf(p, sizeof(p), "%s/.topics/t/topic.properties", e.data);
    TT_CHECK(access(p, F_OK) != 0);
    const char *k[] = {"segment.bytes", "retention.ms", "local.retention.bytes"};
    const char *v[] = {"65536", "-1", "100000"};
    TT_CHECK_OKE(ts_topic_set_config(e.eng, "t", k, v, 3, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "t", "log.segment.bytes"), 65536);
    TT_CHECK_EQ_INT(topic_int(&e, "t", "log.local.retention.bytes"), 100000);
done:
    env_done(&e);
}

TT_TEST(longest_topic_name_holds_configs)
{
    env e;
    env_init(&e, NULL);
    char topic[250];
    memset(topic, 'x', 249);
    topic[249] = 0;
    TT_CHECK_OKE(env_open(&e), e.err);
    const char *k[] = {"segment.bytes"}, *v[] = {"70000"};
    TT_CHECK_OKE(ts_topic_set_config(e.eng, topic, k, v, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, topic, "log.segment.bytes"), 70000);
    env_close(&e);
    /* restart */
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, topic, "log.segment.bytes"), 70000);
    /* a new partition of the topic gets it (the config is found by name) */
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, topic, 0, 1, &p, e.err, sizeof(e.err)), e.err);
    env_close(&e);
    /* lost data dir: the config comes back from the bucket (nothing of the
     * partition was uploaded, so it is created anew) */
    TT_CHECK_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, topic, 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, topic, "log.segment.bytes"), 70000);
done:
    env_done(&e);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

TT_TEST(older_data_dirs_keep_their_configs)
{
    env e;
    env_init(&e, NULL);
    char dir[700], path[900];
    snprintf(dir, sizeof(dir), "%s/.topics", e.data);
    TT_CHECK_OK(ts_fs_mkdirs(dir, NULL, 0));
    /* the layout of older versions; one written before keys were checked */
    snprintf(path, sizeof(path), "%s/old.properties", dir);
    write_file(path, "# topic-level overrides of old\nlog.segment.bytes=80000\n");
    snprintf(path, sizeof(path), "%s/dirty.properties", dir);
    write_file(path, "log.segment.bytes=90000\nlog.dirs=/etc\n");
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "old", "log.segment.bytes"), 80000);
    TT_CHECK_EQ_INT(topic_int(&e, "dirty", "log.segment.bytes"), 90000);
    ts_config *c = ts_eng_topic_config(e.eng, "dirty");
    TT_CHECK(c && strcmp(ts_config_get_str(c, "log.dirs"), "/etc") != 0);
    ts_config_destroy(c);
    /* rewriting moves it to the new layout; the old file goes */
    const char *k[] = {"retention.ms"}, *v[] = {"-1"};
    TT_CHECK_OKE(ts_topic_set_config(e.eng, "old", k, v, 1, e.err, sizeof(e.err)), e.err);
    snprintf(path, sizeof(path), "%s/old.properties", dir);
    TT_CHECK(access(path, F_OK) != 0);
    env_close(&e);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "old", "log.segment.bytes"), 80000);
    TT_CHECK_EQ_INT(topic_int(&e, "old", "log.retention.ms"), -1);
done:
    env_done(&e);
}

/* The row of config_list named key (NULL when absent). */
static const ts_config_row *row_of(const ts_config_row *rows, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].name, key)) return &rows[i];
    return NULL;
}

/* AlterConfigs / IncrementalAlterConfigs semantics: replace, delete,
 * validate-only; Kafka keys the engine does not apply are kept and listed. */
TT_TEST(alter_replaces_deletes_and_keeps_kafka_keys)
{
    env e;
    env_init(&e, NULL);
    ts_config_row *rows = NULL;
    size_t n = 0;
    const ts_config_row *r;
    TT_CHECK_OKE(env_open(&e), e.err);
    const char *k[] = {"retention.ms", "min.insync.replicas", "cleanup.policy"};
    const char *v[] = {"1234", "2", "delete"};
    TT_CHECK_OKE(ts_topic_alter_config(e.eng, "a", k, v, 3, 0, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "a", "log.retention.ms"), 1234);
    TT_CHECK_OKE(ts_config_list(e.eng, "a", &rows, &n, e.err, sizeof(e.err)), e.err);
    r = row_of(rows, n, "min.insync.replicas");
    TT_CHECK(r && !strcmp(r->value, "2") && (r->flags & TS_CONFIG_TOPIC_SET) &&
             (r->flags & TS_CONFIG_STORED));
    r = row_of(rows, n, "segment.bytes");
    TT_CHECK(r && !strcmp(r->value, "1073741824") && !strcmp(r->synonym, "log.segment.bytes") &&
             !(r->flags & TS_CONFIG_TOPIC_SET));
    free(rows);
    rows = NULL;
    /* validate-only and a refused value change nothing */
    const char *k2[] = {"retention.ms"}, *v2[] = {"99"}, *bad[] = {"compact"};
    TT_CHECK_OKE(ts_topic_alter_config(e.eng, "a", k2, v2, 1, TS_TOPIC_CONFIG_VALIDATE_ONLY,
                                       e.err, sizeof(e.err)),
                 e.err);
    const char *k3[] = {"cleanup.policy"};
    TT_CHECK_EQ_INT(ts_topic_alter_config(e.eng, "a", k3, bad, 1, 0, e.err, sizeof(e.err)),
                    TS_E_CONFIG);
    TT_CHECK(strstr(e.err, "compaction is not supported") != NULL);
    TT_CHECK_EQ_INT(topic_int(&e, "a", "log.retention.ms"), 1234);
    /* delete one key (NULL value), the others stay */
    const char *del[] = {NULL};
    TT_CHECK_OKE(ts_topic_alter_config(e.eng, "a", k2, del, 1, 0, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "a", "log.retention.ms"), ENGINE_RETENTION_MS);
    /* replace: only the keys given remain; kept across a restart */
    const char *k4[] = {"segment.bytes"}, *v4[] = {"65536"};
    TT_CHECK_OKE(ts_topic_alter_config(e.eng, "a", k4, v4, 1, TS_TOPIC_CONFIG_REPLACE, e.err,
                                       sizeof(e.err)),
                 e.err);
    env_close(&e);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "a", "log.segment.bytes"), 65536);
    TT_CHECK_OKE(ts_config_list(e.eng, "a", &rows, &n, e.err, sizeof(e.err)), e.err);
    r = row_of(rows, n, "min.insync.replicas");
    TT_CHECK(r && !strcmp(r->value, "1") && !(r->flags & TS_CONFIG_TOPIC_SET));
done:
    free(rows);
    env_done(&e);
}

/* Dynamic engine settings: in effect for topics without an override, back
 * to the opened value on NULL; only dynamic settings may change. */
TT_TEST(engine_alter_changes_dynamic_settings_only)
{
    env e;
    env_init(&e, NULL);
    ts_config_row *rows = NULL;
    size_t n = 0;
    TT_CHECK_OKE(env_open(&e), e.err);
    const char *k[] = {"retention.ms"}, *v[] = {"5000"};
    TT_CHECK_OKE(ts_topic_set_config(e.eng, "over", k, v, 1, e.err, sizeof(e.err)), e.err);
    const char *ek[] = {"log.retention.ms"}, *ev[] = {"7777"};
    TT_CHECK_OKE(ts_engine_alter_config(e.eng, ek, ev, 1, 0, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "plain", "log.retention.ms"), 7777);
    TT_CHECK_EQ_INT(topic_int(&e, "over", "log.retention.ms"), 5000);
    TT_CHECK_OKE(ts_config_list(e.eng, NULL, &rows, &n, e.err, sizeof(e.err)), e.err);
    const ts_config_row *r = row_of(rows, n, "log.retention.ms");
    TT_CHECK(r && !strcmp(r->value, "7777") && (r->flags & TS_CONFIG_ALTERED) &&
             (r->flags & TS_CONFIG_DYNAMIC));
    r = row_of(rows, n, "aws.secret.access.key");
    TT_CHECK(r && (r->flags & TS_CONFIG_SENSITIVE) && !r->value[0]);
    const char *ro[] = {"remote.storage.url"}, *rov[] = {"file:///tmp"};
    TT_CHECK_EQ_INT(ts_engine_alter_config(e.eng, ro, rov, 1, 0, e.err, sizeof(e.err)),
                    TS_E_CONFIG);
    TT_CHECK(strstr(e.err, "remote.storage.url") && strstr(e.err, "read-only"));
    const char *revert[] = {NULL};
    TT_CHECK_OKE(ts_engine_alter_config(e.eng, ek, revert, 1, 0, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(topic_int(&e, "plain", "log.retention.ms"), ENGINE_RETENTION_MS);
done:
    free(rows);
    env_done(&e);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "topic_config");
    TT_RUN(broker_keys_are_not_topic_configs);
    TT_RUN(longest_topic_name_holds_configs);
    TT_RUN(older_data_dirs_keep_their_configs);
    TT_RUN(alter_replaces_deletes_and_keeps_kafka_keys);
    TT_RUN(engine_alter_changes_dynamic_settings_only);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
