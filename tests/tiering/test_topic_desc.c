/*
 * test_topic_desc.c — topic descriptors and the bucket's topic list
 * (tiering/topic_desc.c, issue 12 item 5): paging in the bucket's key
 * order, counts from descriptors for partitions that never uploaded, the
 * count lowered and the descriptors removed by deletes, a failed PUT
 * retried by the background tick, an unreadable descriptor named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "tierstore.h"
#include "tt.h"

typedef struct env {
    char dir[256], bucket[300], err[1024];
    ts_engine *eng;
} env;

static int env_open(env *e, const char *url_fmt)
{
    snprintf(e->dir, sizeof e->dir, "/tmp/ts-topic-desc-XXXXXX");
    if (!mkdtemp(e->dir)) return -1;
    snprintf(e->bucket, sizeof e->bucket, "%s/bucket", e->dir);
    char data[300], url[600];
    snprintf(data, sizeof data, "%s/data", e->dir);
    snprintf(url, sizeof url, url_fmt, e->bucket);
    ts_config *c = ts_config_create();
    int bad = ts_config_set(c, "log.dirs", data, e->err, sizeof e->err) ||
              ts_config_set(c, "remote.storage.enable", "true", e->err, sizeof e->err) ||
              ts_config_set(c, "remote.storage.url", url, e->err, sizeof e->err) ||
              ts_config_set(c, "remote.log.manager.task.interval.ms", "50", e->err, sizeof e->err) ||
              ts_engine_open(c, &e->eng, e->err, sizeof e->err);
    ts_config_destroy(c);
    return bad ? -1 : 0;
}

static void env_close(env *e)
{
    ts_engine_close(e->eng);
    ts_fs_rmtree(e->dir, NULL, 0);
}

static int open_part(env *e, const char *topic, int32_t id)
{
    ts_partition *p;
    return ts_partition_open(e->eng, topic, id, 1, &p, e->err, sizeof e->err) ? -1 : 0;
}

/* The count ts_topics_list gives topic (page of 1000), -2 when absent. */
static int32_t listed(env *e, const char *topic)
{
    ts_topic_info *rows = NULL;
    size_t n = 0;
    int32_t c = -2;
    if (ts_topics_list(e->eng, NULL, 1000, &rows, &n, e->err, sizeof e->err)) return -3;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].name, topic)) c = rows[i].partitions;
    free(rows);
    return c;
}

TT_TEST(list_paged_in_key_order)
{
    env e;
    TT_ASSERT_MSG(env_open(&e, "file://%s") == 0, "%s", e.err);
    const char *names[] = {"a", "a.b", "a-b", "ab"};
    for (int i = 0; i < 4; i++) TT_CHECK_MSG(open_part(&e, names[i], 0) == 0, "%s", e.err);
    TT_CHECK_MSG(open_part(&e, "z", 1) == 0, "%s", e.err); /* only partition 1: 2 recorded */
    /* "<topic>/" order: '-' < '.' < '/' < letters */
    const char *want[] = {"a-b", "a.b", "a", "ab", "z"};
    char after[256] = "";
    size_t got = 0, pages = 0;
    for (;;) {
        ts_topic_info *rows = NULL;
        size_t n = 0;
        TT_CHECK_OKE(ts_topics_list(e.eng, after, 2, &rows, &n, e.err, sizeof e.err), e.err);
        pages++;
        for (size_t i = 0; i < n && got < 5; i++, got++) {
            TT_CHECK_STR(rows[i].name, want[got]);
            TT_CHECK_EQ_INT(rows[i].partitions, got == 4 ? 2 : 1);
        }
        if (n) snprintf(after, sizeof after, "%s", rows[n - 1].name);
        free(rows);
        if (n < 2) break;
    }
    TT_CHECK_EQ_INT(got, 5);
    TT_CHECK_EQ_INT(pages, 3);
    int32_t *parts = NULL;
    size_t np = 0;
    TT_CHECK_OKE(ts_topic_partitions(e.eng, "z", &parts, &np, e.err, sizeof e.err), e.err);
    TT_CHECK(np == 2 && parts[0] == 0 && parts[1] == 1);
    free(parts);
done:
    env_close(&e);
}

TT_TEST(deletes_lower_then_remove)
{
    env e;
    char path[600];
    struct stat sb;
    TT_ASSERT_MSG(env_open(&e, "file://%s") == 0, "%s", e.err);
    for (int i = 0; i < 3; i++) TT_CHECK_MSG(open_part(&e, "y", i) == 0, "%s", e.err);
    TT_CHECK_EQ_INT(listed(&e, "y"), 3);
    TT_CHECK_OKE(ts_partition_delete(e.eng, "y", 2, e.err, sizeof e.err), e.err);
    TT_CHECK_EQ_INT(listed(&e, "y"), 2); /* the highest went: a failed create undone */
    TT_CHECK_OKE(ts_partition_delete(e.eng, "y", 0, e.err, sizeof e.err), e.err);
    TT_CHECK_EQ_INT(listed(&e, "y"), 2); /* not the highest: partitions stay contiguous */
    TT_CHECK_OKE(ts_partition_delete(e.eng, "y", 1, e.err, sizeof e.err), e.err);
    TT_CHECK_EQ_INT(listed(&e, "y"), -2); /* the last one: the topic is gone */
    snprintf(path, sizeof path, "%s/y/descriptor", e.bucket);
    TT_CHECK(stat(path, &sb) != 0);
done:
    env_close(&e);
}

TT_TEST(failed_put_retried_by_tick)
{
    env e;
    TT_ASSERT_MSG(env_open(&e, "faulty+file://%s?ops=put&fail_next=1") == 0, "%s", e.err);
    TT_CHECK_MSG(open_part(&e, "w", 0) == 0, "%s", e.err); /* its descriptor PUT fails */
    int32_t c = -2;
    for (int i = 0; i < 400 && c != 1; i++) {
        usleep(50000);
        c = listed(&e, "w");
    }
    TT_CHECK_EQ_INT(c, 1);
done:
    env_close(&e);
}

TT_TEST(broken_descriptor_named)
{
    env e;
    char path[600];
    TT_ASSERT_MSG(env_open(&e, "file://%s") == 0, "%s", e.err);
    TT_CHECK_MSG(open_part(&e, "v", 0) == 0, "%s", e.err);
    snprintf(path, sizeof path, "%s/v/descriptor/99999999999999999999-00000000.json", e.bucket);
    FILE *f = fopen(path, "w");
    TT_CHECK(f != NULL);
    fputs("{\"format\":1,\"topic\":\"other\",\"partitions\":3}", f);
    fclose(f);
    TT_CHECK_EQ_INT(listed(&e, "v"), -1);
    int32_t *parts = NULL;
    size_t np = 0;
    TT_CHECK_EQ_INT(ts_topic_partitions(e.eng, "v", &parts, &np, e.err, sizeof e.err),
                    TS_E_CORRUPT);
    TT_CHECK_MSG(strstr(e.err, "v/descriptor/99999999999999999999-00000000.json") &&
                 strstr(e.err, "\"topic\" is not this topic"), "%s", e.err);
    free(parts);
done:
    env_close(&e);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(list_paged_in_key_order);
    TT_RUN(deletes_lower_then_remove);
    TT_RUN(failed_put_retried_by_tick);
    TT_RUN(broken_descriptor_named);
    return tt_summary();
}
