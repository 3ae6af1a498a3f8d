/*
 * test_s3_suite.c — the S3 integration suite, basic operations: put/get/head/delete,
 * empty objects, the small writer, batched deletes, list pagination,
 * conditional PUT and rejected credentials, against a real S3-compatible
 * server (see s3_suite.h for the environment and the other programs).
 *
 *   test_s3_suite [--group ops|list|conditional|auth] [test...]
 */
#include "s3_suite.h"

/* ------------------------------------------------------------------ ops */

TT_TEST(put_get_head_delete)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, NULL);
    TT_CHECK(os);
    const char *key = "ops/odd name+=&%~ü/obj.bin";
    size_t n = 100000;
    uint8_t *data = malloc(n);
    gen(1, 0, data, n);
    TT_CHECK_OKE(ts_objstore_put(os, key, data, n, 0, err, sizeof(err)), err);
    uint64_t size = 0;
    TT_CHECK_OKE(ts_objstore_head(os, key, &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, n);
    uint8_t *out;
    size_t out_len;
    TT_CHECK_OKE(ts_objstore_get(os, key, 0, TS_OBJSTORE_TO_END, &out, &out_len, err, sizeof(err)),
                 err);
    TT_CHECK(out_len == n && !memcmp(out, data, n));
    free(out);
    /* Ranges: middle, to the end, running past the end. */
    TT_CHECK_OKE(ts_objstore_get(os, key, 4321, 777, &out, &out_len, err, sizeof(err)), err);
    TT_CHECK(out_len == 777 && !memcmp(out, data + 4321, 777));
    free(out);
    TT_CHECK_OKE(
        ts_objstore_get(os, key, n - 10, TS_OBJSTORE_TO_END, &out, &out_len, err, sizeof(err)),
        err);
    TT_CHECK(out_len == 10 && !memcmp(out, data + n - 10, 10));
    free(out);
    TT_CHECK_OKE(ts_objstore_get(os, key, n - 5, 100, &out, &out_len, err, sizeof(err)), err);
    TT_CHECK(out_len == 5 && !memcmp(out, data + n - 5, 5));
    free(out);
    /* A range starting at the end is refused like the fs backend does. */
    TT_CHECK_EQ_INT(ts_objstore_get(os, key, n, 100, &out, &out_len, err, sizeof(err)), TS_E_INVAL);
    TT_CHECK(out == NULL && strstr(err, "not satisfiable"));
    /* Overwrite, then delete twice (missing is fine), then it is gone. */
    TT_CHECK_OKE(ts_objstore_put(os, key, data, 10, 0, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_head(os, key, &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, 10);
    TT_CHECK_OKE(ts_objstore_delete(os, key, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_delete(os, key, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(ts_objstore_head(os, key, &size, err, sizeof(err)), TS_E_NOT_FOUND);
    TT_CHECK_EQ_INT(ts_objstore_get(os, key, 0, 10, &out, &out_len, err, sizeof(err)),
                    TS_E_NOT_FOUND);
    TT_CHECK_MSG(strstr(err, "ops/odd") != NULL, "message names the key: %s", err);
    free(data);
done:
    fixture_close(&fx);
}
TT_TEST(empty_object)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, NULL);
    TT_CHECK(os);
    TT_CHECK_OKE(ts_objstore_put(os, "ops/empty", "", 0, 0, err, sizeof(err)), err);
    uint64_t size = 1;
    TT_CHECK_OKE(ts_objstore_head(os, "ops/empty", &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, 0);
    uint8_t *out;
    size_t out_len = 9;
    TT_CHECK_OKE(
        ts_objstore_get(os, "ops/empty", 0, TS_OBJSTORE_TO_END, &out, &out_len, err, sizeof(err)),
        err);
    TT_CHECK_EQ_INT(out_len, 0);
    free(out);
    /* An empty writer commits an empty object with one PUT. */
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "ops/empty-w", &w, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_head(os, "ops/empty-w", &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, 0);
done:
    fixture_close(&fx);
}
TT_TEST(writer_small_is_one_put)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, NULL);
    TT_CHECK(os);
    uint8_t buf[3000];
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "ops/small-w", &w, err, sizeof(err)), err);
    for (int i = 0; i < 100; i++) {
        gen(2, (uint64_t)i * sizeof(buf), buf, sizeof(buf));
        TT_OKE(ts_objstore_writer_write(w, buf, sizeof(buf), err, sizeof(err)), err);
    }
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 1);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(
        ts_objstore_get(os, "ops/small-w", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)), err);
    TT_CHECK(n == 300000 && check_gen(2, 0, out, n));
    free(out);
    /* Abort before commit: nothing appears. */
    TT_CHECK_OKE(ts_objstore_writer_open(os, "ops/aborted-w", &w, err, sizeof(err)), err);
    TT_OKE(ts_objstore_writer_write(w, buf, sizeof(buf), err, sizeof(err)), err);
    ts_objstore_writer_abort(w);
    TT_CHECK_EQ_INT(ts_objstore_head(os, "ops/aborted-w", &hsize, err, sizeof(err)),
                    TS_E_NOT_FOUND);
done:
    fixture_close(&fx);
}
TT_TEST(delete_many_batches)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, NULL);
    TT_CHECK(os);
    char names[30][64];
    const char *keys[31];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof(names[i]), "del/k%02d&<'\">", i);
        keys[i] = names[i];
        TT_CHECK_OKE(ts_objstore_put(os, keys[i], "x", 1, 0, err, sizeof(err)), err);
    }
    keys[30] = "del/never-existed";
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_delete_many(os, keys, 31, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 1); /* one DeleteObjects */
    size_t n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "del/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ list */

#define NKEYS 1105

typedef struct put_job {
    ts_objstore *os;
    int from, to;
    ts_status st;
    char err[512];
} put_job;

static void *put_range(void *arg)
{
    put_job *j = arg;
    for (int i = j->from; i < j->to && !j->st; i++) {
        char key[64];
        snprintf(key, sizeof(key), "many/key-%05d", i);
        j->st = ts_objstore_put(j->os, key, key, (size_t)(i % 7), 0, j->err, sizeof(j->err));
    }
    return NULL;
}

typedef struct seen {
    int n, sorted, sizes_ok, stop_at;
    char last[64];
} seen;

static int seen_cb(const char *key, uint64_t size, void *opaque)
{
    seen *s = opaque;
    int i;
    if (sscanf(key, "many/key-%05d", &i) != 1 || size != (uint64_t)(i % 7)) s->sizes_ok = 0;
    if (s->n && strcmp(s->last, key) >= 0) s->sorted = 0;
    snprintf(s->last, sizeof(s->last), "%s", key);
    s->n++;
    return s->stop_at && s->n >= s->stop_at;
}

TT_TEST(list_pagination)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, NULL);
    TT_CHECK(os);
    pthread_t t[8];
    put_job jobs[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (put_job){os, i * NKEYS / 8, (i + 1) * NKEYS / 8, TS_OK, ""};
        pthread_create(&t[i], NULL, put_range, &jobs[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++) TT_CHECK_MSG(jobs[i].st == TS_OK, "put: %s", jobs[i].err);
    TT_CHECK_OKE(ts_objstore_put(os, "other/x", "x", 1, 0, err, sizeof(err)), err);

    /* Default pages of 1000: two ListObjectsV2 requests. */
    seen s = {.sorted = 1, .sizes_ok = 1};
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", seen_cb, &s, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(s.n, NKEYS);
    TT_CHECK(s.sorted && s.sizes_ok);
    TT_CHECK_EQ_INT(stats(os).requests - before, 2);

    /* Small pages: many continuation tokens, same answer. */
    ts_objstore_s3_set_list_page(os, 97);
    seen s2 = {.sorted = 1, .sizes_ok = 1};
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", seen_cb, &s2, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(s2.n, NKEYS);
    TT_CHECK(s2.sorted && s2.sizes_ok);
    TT_CHECK_EQ_INT(stats(os).requests - before, (NKEYS + 96) / 97);

    /* Early stop stops paging. */
    seen s3 = {.sorted = 1, .sizes_ok = 1, .stop_at = 150};
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", seen_cb, &s3, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(s3.n, 150);
    TT_CHECK_EQ_INT(stats(os).requests - before, 2);

    /* The whole run prefix holds the extra key too; an unknown prefix nothing. */
    size_t n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "other/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 1);
    n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "nothing-here/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);

    /* Delete them all: two DeleteObjects batches (1000 + 105). */
    static char names[NKEYS][32];
    static const char *keys[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        snprintf(names[i], sizeof(names[i]), "many/key-%05d", i);
        keys[i] = names[i];
    }
    ts_objstore_s3_set_list_page(os, 1000);
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_delete_many(os, keys, NKEYS, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 2);
    n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ conditional */

TT_TEST(put_if_none_match)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, NULL);
    TT_CHECK(os);
    TT_CHECK_OKE(
        ts_objstore_put(os, "cond/manifest", "first", 5, TS_PUT_IF_NONE_MATCH, err, sizeof(err)),
        err);
    ts_status st =
        ts_objstore_put(os, "cond/manifest", "second", 6, TS_PUT_IF_NONE_MATCH, err, sizeof(err));
    TT_CHECK_MSG(st == TS_E_EXISTS, "second conditional put: %s (%s)", ts_status_name(st), err);
    TT_CHECK(strstr(err, "cond/manifest") != NULL);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(
        ts_objstore_get(os, "cond/manifest", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)),
        err);
    TT_CHECK(n == 5 && !memcmp(out, "first", 5));
    free(out);
    /* A plain put still overwrites. */
    TT_CHECK_OKE(ts_objstore_put(os, "cond/manifest", "third", 5, 0, err, sizeof(err)), err);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ auth */

TT_TEST(wrong_secret_one_clear_error)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID");
    const char *bad_secret = "definitely-not-the-secret-0123456789abcdef";
    char id_kv[300], secret_kv[300];
    snprintf(id_kv, sizeof(id_kv), "aws.access.key.id=%s", id);
    snprintf(secret_kv, sizeof(secret_kv), "aws.secret.access.key=%s", bad_secret);
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, id_kv, secret_kv, NULL);
    TT_CHECK(os);
    int64_t t0 = ts_mono_ms();
    ts_status st = ts_objstore_put(os, "auth/x", "x", 1, 0, err, sizeof(err));
    int64_t took = ts_mono_ms() - t0;
    fprintf(stderr, "    message: %s\n", err);
    TT_CHECK_EQ_INT(st, TS_E_AUTH);
    TT_CHECK_EQ_INT(stats(os).requests, 1); /* no retry storm */
    TT_CHECK_EQ_INT(stats(os).retries, 0);
    TT_CHECK(took < 5000);
    TT_CHECK_MSG(strstr(err, id) != NULL, "names the access key id");
    TT_CHECK_MSG(strstr(err, g_endpoint) != NULL, "names the endpoint");
    TT_CHECK_MSG(strstr(err, bad_secret) == NULL, "never the secret");
    TT_CHECK(strstr(err, getenv("AWS_SECRET_ACCESS_KEY")) == NULL);
    /* Reads and listings fail the same way, once each. */
    uint8_t *out;
    size_t n;
    TT_CHECK_EQ_INT(ts_objstore_get(os, "auth/x", 0, 10, &out, &n, err, sizeof(err)), TS_E_AUTH);
    TT_CHECK_EQ_INT(ts_objstore_head(os, "auth/x", &hsize, err, sizeof(err)), TS_E_AUTH);
    size_t cnt = 0;
    TT_CHECK_EQ_INT(ts_objstore_list(os, "", count_cb, &cnt, err, sizeof(err)), TS_E_AUTH);
    TT_CHECK_EQ_INT(stats(os).requests, 4);
    /* An unknown access key id too. */
    ts_config_set(fx.cfg, "aws.access.key.id", "TSNOSUCHKEYID0000000", NULL, 0);
    os = fixture_reopen(&fx, open_store);
    TT_CHECK(os);
    TT_CHECK_EQ_INT(ts_objstore_put(os, "auth/x", "x", 1, 0, err, sizeof(err)), TS_E_AUTH);
    TT_CHECK(strstr(err, "TSNOSUCHKEYID0000000") != NULL);
    TT_CHECK_EQ_INT(stats(os).requests, 1);
done:
    fixture_close(&fx);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    int rc = s3_suite_start(argc, argv);
    if (rc) return rc;
    if (GROUP("ops")) {
        TT_RUN(put_get_head_delete);
        TT_RUN(empty_object);
        TT_RUN(writer_small_is_one_put);
        TT_RUN(delete_many_batches);
    }
    if (GROUP("list")) TT_RUN(list_pagination);
    if (GROUP("conditional")) TT_RUN(put_if_none_match);
    if (GROUP("auth")) TT_RUN(wrong_secret_one_clear_error);
    wipe_prefix();
    return tt_summary();
}
