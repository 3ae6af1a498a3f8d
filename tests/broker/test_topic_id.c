/*
 * test_topic_id.c — the per-topic id records (broker/topic_id.c): format and
 * parse round trip; every malformed file is an error that says what is wrong
 * (never "no id", which would let a broker adopt data it cannot place);
 * write, read back, replace, remove, list, in a temp directory.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/topic_id.h"
#include "tt.h"

#define ID1 "AAAAAAAAAAAAAAAAAAAAAA"
#define ID2 "Zz09_-Zz09_-Zz09_-Zz09"

TT_TEST(format_parse_round_trip)
{
    char buf[64], id[TOPIC_ID_LEN + 1], err[128];
    size_t n = topic_id_format(ID2, buf, sizeof buf);
    TT_ASSERT_STR(buf, "version: 0\ntopic_id: " ID2 "\n");
    TT_ASSERT_EQ_INT((int)n, (int)strlen(buf));
    TT_ASSERT_EQ_INT(topic_id_parse(buf, n, id, err, sizeof err), 0);
    TT_ASSERT_STR(id, ID2);
    TT_ASSERT_EQ_INT((int)topic_id_format("short", buf, sizeof buf), 0);
    TT_ASSERT_EQ_INT((int)topic_id_format(ID1, buf, 10), 0);
    TT_ASSERT(!topic_id_valid("AAAAAAAAAAAAAAAAAAAAA+")); /* '+' is base64, not base64url */
}

/* Each malformed body: -1, id cleared, the message names the fault. */
TT_TEST(corrupt_is_an_error)
{
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"", "does not start"},
        {"version: 0\ntopic_id: " ID1, "newline"},               /* torn: no newline */
        {"version: 0\ntopic_id: " ID1 "\n\n", "newline"},        /* trailing bytes */
        {"version: 0\ntopic_id: AAAA\n", "22 characters"},
        {"version: 0\ntopic_id: AAAAAAAAAAA AAAAAAAAAA\n", "base64url"},
        {"version: 1\ntopic_id: " ID1 "\n", "unknown version"},
        {"version:0\ntopic_id: " ID1 "\n", "does not start"},
        {"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
         "does not start"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[TOPIC_ID_LEN + 1] = "x", err[128] = "";
        size_t len = i == 7 ? 44 : strlen(bad[i].body);
        TT_ASSERT_EQ_INT(topic_id_parse(bad[i].body, len, id, err, sizeof err), -1);
        TT_ASSERT_STR(id, "");
        TT_ASSERT_MSG(strstr(err, bad[i].why) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      bad[i].why);
    }
}

static void count_cb(const char *topic, void *arg)
{
    if (!strcmp(topic, "orders") || !strcmp(topic, "a.b-c_d")) (*(int *)arg)++;
    else (*(int *)arg) += 100; /* a name that is no record */
}

TT_TEST(files)
{
    char root[] = "/tmp/tt-topic-id-XXXXXX", dir[256], path[512], id[TOPIC_ID_LEN + 1],
         err[512] = "";
    TT_ASSERT(mkdtemp(root) != NULL);
    snprintf(dir, sizeof dir, "%s/topic-ids", root);
    int n = 0;
    TT_CHECK_EQ_INT(topic_id_list(dir, count_cb, &n, err, sizeof err), 0); /* no dir yet */
    TT_CHECK_EQ_INT(n, 0);
    TT_CHECK_EQ_INT(topic_id_read(dir, "orders", id, err, sizeof err), 0);
    TT_CHECK_EQ_INT(topic_id_write(dir, "orders", ID1, err, sizeof err), 0);
    TT_CHECK_EQ_INT(topic_id_read(dir, "orders", id, err, sizeof err), 1);
    TT_CHECK_STR(id, ID1);
    TT_CHECK_EQ_INT(topic_id_write(dir, "orders", ID2, err, sizeof err), 0); /* replaced */
    TT_CHECK_EQ_INT(topic_id_read(dir, "orders", id, err, sizeof err), 1);
    TT_CHECK_STR(id, ID2);
    TT_CHECK_EQ_INT(topic_id_write(dir, "orders", "bad id", err, sizeof err), -1);
    TT_CHECK_EQ_INT(topic_id_write(dir, "../x", ID1, err, sizeof err), -1);
    TT_CHECK_EQ_INT(topic_id_write(dir, "a.b-c_d", ID1, err, sizeof err), 0);
    /* A temp file left by a crash is no record. */
    snprintf(path, sizeof path, "%s/orders~tmp", dir);
    FILE *f = fopen(path, "w");
    TT_CHECK(f != NULL);
    fputs("version: 0\n", f);
    fclose(f);
    TT_CHECK_EQ_INT(topic_id_list(dir, count_cb, &n, err, sizeof err), 0);
    TT_CHECK_EQ_INT(n, 2);
    /* A corrupt file reads as an error naming it. */
    snprintf(path, sizeof path, "%s/orders", dir);
    f = fopen(path, "w");
    TT_CHECK(f != NULL);
    fputs("version: 0\ntopic_id: " ID1, f); /* torn */
    fclose(f);
    TT_CHECK_EQ_INT(topic_id_read(dir, "orders", id, err, sizeof err), -1);
    TT_CHECK_MSG(strstr(err, path) != NULL, "'%s' does not name %s", err, path);
    TT_CHECK_EQ_INT(topic_id_remove(dir, "orders", err, sizeof err), 0);
    TT_CHECK_EQ_INT(topic_id_remove(dir, "orders", err, sizeof err), 0); /* gone: fine */
    TT_CHECK_EQ_INT(topic_id_read(dir, "orders", id, err, sizeof err), 0);
done:
    snprintf(path, sizeof path, "rm -rf '%s'", root);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", root);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(format_parse_round_trip);
    TT_RUN(corrupt_is_an_error);
    TT_RUN(files);
    return tt_summary();
}
