/*
 * test_objstore.c — unit tests of the object-store front door (URL
 * dispatch, key checks) and the fs backend: round trips, conditional puts,
 * the streaming writer, listing, concurrency and ENOSPC. The fault-injecting
 * wrapper is tested in test_objstore_faulty.c.
 *
 * Everything runs against real directories under $TMPDIR.
 * `test_objstore name...` runs only the named tests.
 */
#include "objstore_test.h"

/* ---- fs store: basic round trips ---------------------------------------- */

TT_TEST(fs_put_get_head_delete)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-basic");
    const char *data = "hello, object store";
    size_t dl = strlen(data);
    TT_OKE(ts_objstore_put(os, "a/b/c.obj", data, dl, 0, ERR), g_err);
    TT_ASSERT(path_exists(dir, "a/b/c.obj"));
    TT_ASSERT(get_equals(os, "a/b/c.obj", data, dl));
    uint64_t size = 0;
    TT_OKE(ts_objstore_head(os, "a/b/c.obj", &size, ERR), g_err);
    TT_ASSERT_EQ_INT(size, dl);
    /* Plain puts replace. */
    TT_OKE(ts_objstore_put(os, "a/b/c.obj", "xy", 2, 0, ERR), g_err);
    TT_ASSERT(get_equals(os, "a/b/c.obj", "xy", 2));
    /* Empty objects exist and read back empty. */
    TT_OKE(ts_objstore_put(os, "empty", NULL, 0, 0, ERR), g_err);
    TT_OKE(ts_objstore_head(os, "empty", &size, ERR), g_err);
    TT_ASSERT_EQ_INT(size, 0);
    TT_ASSERT(get_equals(os, "empty", "", 0));
    TT_OKE(ts_objstore_delete(os, "a/b/c.obj", ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "a/b/c.obj", &size, ERR), TS_E_NOT_FOUND);
    /* Emptied parents are pruned; the temp dir stays and holds nothing. */
    TT_ASSERT(!path_exists(dir, "a"));
    TT_ASSERT(path_exists(dir, ".tmp"));
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    TT_ASSERT_STR(os->ops->scheme, "file");
    char url[600];
    snprintf(url, sizeof(url), "file://%s", dir);
    TT_ASSERT_STR(os->url, url);
    cleanup(os, dir);
}

TT_TEST(fs_ranged_get_edges)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-range");
    uint8_t data[100];
    for (int i = 0; i < 100; i++) data[i] = (uint8_t)i;
    TT_OKE(ts_objstore_put(os, "r", data, sizeof(data), 0, ERR), g_err);
    struct { uint64_t off, len; size_t want_len; } ok[] = {
        {0, 10, 10},  {90, 10, 10}, {95, 10, 5}, {99, TS_OBJSTORE_TO_END, 1},
        {0, TS_OBJSTORE_TO_END, 100}, {50, UINT64_MAX - 10, 50}, /* no overflow in off+len */
        {99, 1, 1},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint8_t *b = NULL;
        size_t n = 0;
        TT_OKE(ts_objstore_get(os, "r", ok[i].off, ok[i].len, &b, &n, ERR), g_err);
        TT_ASSERT_EQ_INT(n, ok[i].want_len);
        int same = !memcmp(b, data + ok[i].off, n);
        free(b);
        TT_ASSERT_MSG(same, "range %zu: wrong bytes", i);
    }
    /* Start at or past the end: refused like S3's 416. */
    uint64_t bad[] = {100, 101, 1u << 20, UINT64_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *b = (uint8_t *)1;
        size_t n = 7;
        TT_ASSERT_EQ_INT(ts_objstore_get(os, "r", bad[i], 1, &b, &n, ERR), TS_E_INVAL);
        TT_ASSERT(b == NULL && n == 0);
        TT_ASSERT_MSG(strstr(g_err, "not satisfiable") && strstr(g_err, "'r'"), "msg: %s", g_err);
    }
    /* Zero-length ranges are refused before any backend sees them. */
    uint8_t *b = NULL;
    size_t n = 0;
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "r", 0, 0, &b, &n, ERR), TS_E_INVAL);
    TT_ASSERT(strstr(g_err, "zero-length"));
    /* An empty object reads whole, but nothing past offset 0. */
    TT_OKE(ts_objstore_put(os, "e", "", 0, 0, ERR), g_err);
    TT_OKE(ts_objstore_get(os, "e", 0, TS_OBJSTORE_TO_END, &b, &n, ERR), g_err);
    TT_ASSERT_EQ_INT(n, 0);
    free(b);
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "e", 1, 1, &b, &n, ERR), TS_E_INVAL);
    cleanup(os, dir);
}

TT_TEST(fs_missing_keys)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-missing");
    uint8_t *b = NULL;
    size_t n = 0;
    uint64_t size = 0;
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "no/such", 0, 10, &b, &n, ERR), TS_E_NOT_FOUND);
    TT_ASSERT_MSG(strstr(g_err, "'no/such'") && strstr(g_err, dir), "msg: %s", g_err);
    TT_ASSERT(!ts_status_is_retriable(TS_E_NOT_FOUND));
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "no/such", &size, ERR), TS_E_NOT_FOUND);
    TT_OKE(ts_objstore_delete(os, "no/such", ERR), g_err);
    /* A "directory" of other keys is not an object; neither is a key under
     * an object. */
    TT_OKE(ts_objstore_put(os, "d/x", "1", 1, 0, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "d", 0, 10, &b, &n, ERR), TS_E_NOT_FOUND);
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "d", &size, ERR), TS_E_NOT_FOUND);
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "d/x/y", 0, 10, &b, &n, ERR), TS_E_NOT_FOUND);
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "d/x/y", &size, ERR), TS_E_NOT_FOUND);
    TT_OKE(ts_objstore_delete(os, "d", ERR), g_err);
    TT_ASSERT(get_equals(os, "d/x", "1", 1));
    /* A put that would need an object to be a directory fails, clearly. */
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "d/x/y", "2", 1, 0, ERR), TS_E_IO);
    TT_ASSERT_MSG(strstr(g_err, "'d/x/y'") && strstr(g_err, "itself an object"), "msg: %s", g_err);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    cleanup(os, dir);
}

TT_TEST(fs_if_none_match)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-inm");
    TT_OKE(ts_objstore_put(os, "k/1", "first", 5, TS_PUT_IF_NONE_MATCH, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "k/1", "second", 6, TS_PUT_IF_NONE_MATCH, ERR),
                     TS_E_EXISTS);
    TT_ASSERT_MSG(strstr(g_err, "'k/1'") && strstr(g_err, "exists"), "msg: %s", g_err);
    TT_ASSERT(get_equals(os, "k/1", "first", 5));
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    /* Unknown flags are refused. */
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "k/2", "x", 1, 0x80, ERR), TS_E_INVAL);
    cleanup(os, dir);
}

#define RACERS 8
typedef struct race_arg {
    ts_objstore *os;
    pthread_barrier_t *bar;
    const char *key;
    int id;
    ts_status st;
} race_arg;

static void *race_put(void *p)
{
    race_arg *a = p;
    char body[32], err[256];
    int n = snprintf(body, sizeof(body), "writer-%d", a->id);
    pthread_barrier_wait(a->bar);
    a->st = ts_objstore_put(a->os, a->key, body, (size_t)n, TS_PUT_IF_NONE_MATCH, err, sizeof(err));
    return NULL;
}

TT_TEST(fs_if_none_match_race)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-race");
    for (int round = 0; round < 20; round++) {
        char key[64];
        snprintf(key, sizeof(key), "race/%d/obj", round);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, RACERS);
        pthread_t th[RACERS];
        race_arg args[RACERS];
        for (int i = 0; i < RACERS; i++) {
            args[i] = (race_arg){os, &bar, key, i, TS_E_INVAL};
            pthread_create(&th[i], NULL, race_put, &args[i]);
        }
        for (int i = 0; i < RACERS; i++) pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        int winners = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            if (args[i].st == TS_OK) {
                winners++;
                winner = i;
            } else {
                TT_ASSERT_EQ_INT(args[i].st, TS_E_EXISTS);
            }
        }
        TT_ASSERT_EQ_INT(winners, 1);
        char want[32];
        int wl = snprintf(want, sizeof(want), "writer-%d", winner);
        TT_ASSERT_MSG(get_equals(os, key, want, (size_t)wl), "round %d: winner's bytes not stored",
                      round);
    }
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    cleanup(os, dir);
}

/* ---- fs store: streaming writer ----------------------------------------- */

TT_TEST(fs_writer_commit)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-wc");
    ts_objstore_writer *w = NULL;
    TT_OKE(ts_objstore_writer_open(os, "seg/0001", &w, ERR), g_err);
    uint8_t big[70000];
    for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7);
    for (size_t off = 0; off < sizeof(big); off += 7000)
        TT_OKE(ts_objstore_writer_write(w, big + off, 7000, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, NULL, 0, ERR), g_err);
    /* Nothing is visible before commit, and temp files are never listed. */
    uint64_t size;
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "seg/0001", &size, ERR), TS_E_NOT_FOUND);
    listing l;
    TT_OKE(list_all(os, "", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 0);
    TT_ASSERT_EQ_INT(count_tmp(dir), 1);
    TT_OKE(ts_objstore_writer_commit(w, ERR), g_err);
    TT_ASSERT(get_equals(os, "seg/0001", big, sizeof(big)));
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    TT_OKE(list_all(os, "", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 1);
    TT_ASSERT_STR(l.keys[0], "seg/0001");
    TT_ASSERT_EQ_INT(l.sizes[0], sizeof(big));
    /* Commit replaces like a put. */
    TT_OKE(ts_objstore_writer_open(os, "seg/0001", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "new", 3, ERR), g_err);
    TT_OKE(ts_objstore_writer_commit(w, ERR), g_err);
    TT_ASSERT(get_equals(os, "seg/0001", "new", 3));
    TT_ASSERT_EQ_INT(ts_objstore_writer_commit(NULL, ERR), TS_E_INVAL);
    ts_objstore_writer_abort(NULL);
    cleanup(os, dir);
}

TT_TEST(fs_writer_abort)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-wa");
    ts_objstore_writer *w = NULL;
    TT_OKE(ts_objstore_writer_open(os, "seg/0002", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "partial", 7, ERR), g_err);
    TT_ASSERT_EQ_INT(count_tmp(dir), 1);
    ts_objstore_writer_abort(w);
    uint64_t size;
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "seg/0002", &size, ERR), TS_E_NOT_FOUND);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    TT_ASSERT(!path_exists(dir, "seg"));
    listing l;
    TT_OKE(list_all(os, "", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 0);
    cleanup(os, dir);
}

/* ---- fs store: listing -------------------------------------------------- */

TT_TEST(fs_list_prefix_order_stop)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-list");
    /* Chosen so that directory order and byte order disagree: '-' (0x2d)
     * and '.' (0x2e) sort before '/' (0x2f), '0' after it. */
    const char *keys[] = {"x/2/3", "x0",  "x-1", "x.z",   "x/1", "y",
                          "x/2-", "x/20", "z\xc3\xa9", "z~", "A", "x/2/3a"};
    size_t nk = sizeof(keys) / sizeof(keys[0]);
    for (size_t i = 0; i < nk; i++)
        TT_OKE(ts_objstore_put(os, keys[i], keys[i], strlen(keys[i]), 0, ERR), g_err);
    const char *sorted[16];
    memcpy(sorted, keys, sizeof(keys));
    qsort(sorted, nk, sizeof(sorted[0]), str_cmp);
    listing l;
    TT_OKE(list_all(os, "", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, nk);
    for (size_t i = 0; i < nk; i++) {
        TT_ASSERT_STR(l.keys[i], sorted[i]);
        TT_ASSERT_EQ_INT(l.sizes[i], strlen(sorted[i]));
    }
    struct { const char *prefix; const char *want[8]; } cases[] = {
        {"x/", {"x/1", "x/2-", "x/2/3", "x/2/3a", "x/20"}},
        {"x/2", {"x/2-", "x/2/3", "x/2/3a", "x/20"}},
        {"x/2/", {"x/2/3", "x/2/3a"}},
        {"x/2/3", {"x/2/3", "x/2/3a"}},
        {"x", {"x-1", "x.z", "x/1", "x/2-", "x/2/3", "x/2/3a", "x/20", "x0"}},
        {"z", {"z~", "z\xc3\xa9"}},
        {"nope/", {NULL}},
        {"nope", {NULL}},
        {"x/1/", {NULL}}, /* under an object, not a directory */
        {".tm", {NULL}},  /* the temp dir is never listed */
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        TT_OKE(list_all(os, cases[c].prefix, &l), g_err);
        int want_n = 0;
        while (want_n < 8 && cases[c].want[want_n]) want_n++;
        TT_ASSERT_MSG(l.n == want_n, "prefix '%s': %d keys, want %d", cases[c].prefix, l.n,
                      want_n);
        for (int i = 0; i < want_n; i++) TT_ASSERT_STR(l.keys[i], cases[c].want[i]);
    }
    /* Early stop: the callback's non-zero return ends the walk. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 3;
    TT_OKE(ts_objstore_list(os, "", collect, &l, ERR), g_err);
    TT_ASSERT_EQ_INT(l.n, 3);
    TT_ASSERT_STR(l.keys[2], sorted[2]);
    /* NULL prefix is the whole store. */
    int cnt = 0;
    TT_OKE(ts_objstore_list(os, NULL, count_cb, &cnt, ERR), g_err);
    TT_ASSERT_EQ_INT(cnt, nk);
    cleanup(os, dir);
}

TT_TEST(fs_tmp_dir_hidden_and_cleaned)
{
    char dir[512], p[1024];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-tmp");
    /* Leftovers of a crashed writer: one old, one recent. */
    snprintf(p, sizeof(p), "%s/.tmp/deadbeef-old", dir);
    TT_OK(ts_fs_write_atomic(p, "x", 1, ERR));
    struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    TT_ASSERT(utimensat(AT_FDCWD, p, old, 0) == 0);
    snprintf(p, sizeof(p), "%s/.tmp/deadbeef-new", dir);
    TT_OK(ts_fs_write_atomic(p, "x", 1, ERR));
    TT_OKE(ts_objstore_put(os, "k", "v", 1, 0, ERR), g_err);
    listing l;
    TT_OKE(list_all(os, "", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 1);
    TT_ASSERT_STR(l.keys[0], "k");
    /* .tmp is not reachable as a key. */
    uint8_t *b = NULL;
    size_t n = 0;
    TT_ASSERT_EQ_INT(ts_objstore_get(os, ".tmp/deadbeef-new", 0, 1, &b, &n, ERR), TS_E_INVAL);
    TT_ASSERT_MSG(strstr(g_err, "reserved"), "msg: %s", g_err);
    TT_ASSERT_EQ_INT(ts_objstore_put(os, ".tmp", "v", 1, 0, ERR), TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_objstore_delete(os, ".tmp/deadbeef-new", ERR), TS_E_INVAL);
    TT_OKE(ts_objstore_put(os, ".tmpx/ok", "v", 1, 0, ERR), g_err); /* only .tmp itself */
    /* Reopening removes only the stale temp file. */
    ts_objstore_destroy(os);
    TT_OKE(ts_objstore_fs_open(dir, &os, ERR), g_err);
    TT_ASSERT(!path_exists(dir, ".tmp/deadbeef-old"));
    TT_ASSERT(path_exists(dir, ".tmp/deadbeef-new"));
    cleanup(os, dir);
}

/* ---- argument checks ---------------------------------------------------- */

TT_TEST(bad_keys_rejected)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-badkeys");
    static char longkey[1100];
    memset(longkey, 'k', 1025);
    longkey[1025] = '\0';
    const char *bad[] = {"", "/a", "a//b", "a/", "./a", "a/./b", "a/..", "..", ".", "a/../../etc",
                         longkey, NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *k = bad[i];
        uint8_t *b = NULL;
        size_t n = 0;
        uint64_t size;
        ts_objstore_writer *w = NULL;
        TT_ASSERT_MSG(ts_objstore_put(os, k, "x", 1, 0, ERR) == TS_E_INVAL, "put key %zu", i);
        TT_ASSERT_MSG(strstr(g_err, "key"), "put key %zu msg: %s", i, g_err);
        TT_ASSERT_MSG(ts_objstore_get(os, k, 0, 1, &b, &n, ERR) == TS_E_INVAL, "get %zu", i);
        TT_ASSERT_MSG(ts_objstore_head(os, k, &size, ERR) == TS_E_INVAL, "head %zu", i);
        TT_ASSERT_MSG(ts_objstore_delete(os, k, ERR) == TS_E_INVAL, "delete %zu", i);
        TT_ASSERT_MSG(ts_objstore_writer_open(os, k, &w, ERR) == TS_E_INVAL && !w, "writer %zu", i);
    }
    /* The limit is exactly 1024 bytes (segments under NAME_MAX). */
    memset(longkey, 'k', 1024);
    longkey[1024] = '\0';
    for (int i = 200; i < 1024; i += 201) longkey[i] = '/';
    TT_OKE(ts_objstore_put(os, longkey, "x", 1, 0, ERR), g_err);
    TT_ASSERT(get_equals(os, longkey, "x", 1));
    /* Dots inside a segment are fine. */
    TT_OKE(ts_objstore_put(os, "a/.hidden/..x/b.", "x", 1, 0, ERR), g_err);
    /* Null arguments. */
    TT_ASSERT_EQ_INT(ts_objstore_put(NULL, "k", "x", 1, 0, ERR), TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "k", NULL, 1, 0, ERR), TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "k", NULL, ERR), TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_objstore_list(os, "", NULL, NULL, ERR), TS_E_INVAL);
    /* List prefixes: complete segments obey the key rules, the last part
     * may be anything. */
    listing l;
    const char *bad_prefix[] = {"/", "/a", "a//", "../", "a/../b", "./"};
    for (size_t i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++)
        TT_ASSERT_MSG(list_all(os, bad_prefix[i], &l) == TS_E_INVAL, "prefix '%s'", bad_prefix[i]);
    TT_OKE(list_all(os, "a/.", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 1);
    TT_OKE(list_all(os, "a/.hidden/..", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 1);
    cleanup(os, dir);
}

TT_TEST(bad_urls_rejected)
{
    struct { const char *url; ts_status st; const char *msg; } cases[] = {
        {"", TS_E_CONFIG, "empty"},
        {"http://example.com/b", TS_E_CONFIG, "file:///"},
        {"ftp://x/y", TS_E_CONFIG, "'ftp://x/y'"},
        {"/tmp/plain/path", TS_E_CONFIG, "s3://bucket"},
        {"file://relative/dir", TS_E_CONFIG, "absolute path"},
        {"file:///tmp/x?seed=1", TS_E_CONFIG, "no query"},
        {"file:///", TS_E_CONFIG, "refusing '/'"},
        {"faulty+file:///tmp/ts-never?bogus=1", TS_E_CONFIG, "'bogus'"},
        {"faulty+file:///tmp/ts-never?err_rate=2", TS_E_CONFIG, "err_rate"},
        {"faulty+file:///tmp/ts-never?err_rate=0.5x", TS_E_CONFIG, "probability"},
        {"faulty+file:///tmp/ts-never?ops=put,fly", TS_E_CONFIG, "ops"},
        {"faulty+file:///tmp/ts-never?seed", TS_E_CONFIG, "no value"},
        {"faulty+file:///tmp/ts-never?fail_after_puts=-1", TS_E_CONFIG, "fail_after_puts"},
        {"faulty+faulty+file:///tmp/ts-never?seed=1", TS_E_CONFIG, "nested"},
        {"faulty+gopher://x?seed=1", TS_E_CONFIG, "gopher"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ts_objstore *os = (ts_objstore *)1;
        g_err[0] = '\0';
        ts_status st = ts_objstore_open(cases[i].url, NULL, &os, ERR);
        TT_ASSERT_MSG(st == cases[i].st, "'%s': %s, want %s (%s)", cases[i].url,
                      ts_status_name(st), ts_status_name(cases[i].st), g_err);
        TT_ASSERT_MSG(os == NULL, "'%s': out not cleared", cases[i].url);
        TT_ASSERT_MSG(strstr(g_err, cases[i].msg), "'%s': message '%s' lacks '%s'", cases[i].url,
                      g_err, cases[i].msg);
    }
    /* None of the faulty ones may have created its inner directory. */
    struct stat sb;
    TT_ASSERT(stat("/tmp/ts-never", &sb) != 0);
    ts_objstore *os = NULL;
    TT_ASSERT_EQ_INT(ts_objstore_open(NULL, NULL, &os, ERR), TS_E_CONFIG);
    static char huge[1200];
    memcpy(huge, "file:///", 8);
    memset(huge + 8, 'a', 1100);
    TT_ASSERT_EQ_INT(ts_objstore_open(huge, NULL, &os, ERR), TS_E_CONFIG);
    TT_ASSERT(strstr(g_err, "longer than"));
    ts_objstore_destroy(NULL); /* a no-op */
}

TT_TEST(url_file_opens_fs)
{
    char dir[512], url[700];
    tt_tmpdir(dir, sizeof(dir), "os-url");
    snprintf(url, sizeof(url), "file://%s/nested/root/", dir);
    ts_objstore *os = NULL;
    TT_OKE(ts_objstore_open(url, NULL, &os, ERR), g_err);
    TT_ASSERT_STR(os->ops->scheme, "file");
    TT_OKE(ts_objstore_put(os, "k", "v", 1, 0, ERR), g_err);
    TT_ASSERT(path_exists(dir, "nested/root/k"));
    /* The same directory opened again sees the object. */
    ts_objstore *os2 = NULL;
    snprintf(url, sizeof(url), "file://%s/nested/root", dir);
    TT_OKE(ts_objstore_open(url, NULL, &os2, ERR), g_err);
    TT_ASSERT(get_equals(os2, "k", "v", 1));
    TT_ASSERT_STR(os2->url, url);
    ts_objstore_destroy(os2);
    /* A root that is a file cannot be a store. */
    snprintf(url, sizeof(url), "file://%s/nested/root/k", dir);
    TT_ASSERT(ts_objstore_open(url, NULL, &os2, ERR) != TS_OK);
    TT_ASSERT_MSG(strstr(g_err, url), "msg: %s", g_err);
    cleanup(os, dir);
}

TT_TEST(fs_delete_many)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-delmany");
    char keys[10][32];
    const char *ptrs[11];
    for (int i = 0; i < 10; i++) {
        snprintf(keys[i], sizeof(keys[i]), "dm/%d/obj", i);
        ptrs[i] = keys[i];
        TT_OKE(ts_objstore_put(os, keys[i], "v", 1, 0, ERR), g_err);
    }
    /* A bad key anywhere in the batch: nothing is deleted. */
    const char *with_bad[] = {keys[0], keys[1], "dm/../x"};
    TT_ASSERT_EQ_INT(ts_objstore_delete_many(os, with_bad, 3, ERR), TS_E_INVAL);
    TT_ASSERT_MSG(strstr(g_err, "key 3 of 3"), "msg: %s", g_err);
    listing l;
    TT_OKE(list_all(os, "dm/", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 10);
    /* Half of them plus one that never existed. */
    ptrs[5] = "dm/never";
    TT_OKE(ts_objstore_delete_many(os, ptrs, 6, ERR), g_err);
    TT_OKE(list_all(os, "dm/", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 5);
    TT_ASSERT_STR(l.keys[0], "dm/5/obj");
    TT_ASSERT(!path_exists(dir, "dm/0"));
    TT_OKE(ts_objstore_delete_many(os, NULL, 0, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_delete_many(os, NULL, 2, ERR), TS_E_INVAL);
    cleanup(os, dir);
}

/* ---- concurrency -------------------------------------------------------- */

#define CT_THREADS 4
#define CT_OBJS 200
typedef struct conc_arg {
    ts_objstore *os;
    int id;
    int failures;
    char err[512];
} conc_arg;

static void *conc_worker(void *p)
{
    conc_arg *a = p;
    for (int i = 0; i < CT_OBJS; i++) {
        char key[64], body[64];
        /* Threads share directories, and half the objects are deleted at
         * once, so puts race with the pruning of empty parents. */
        snprintf(key, sizeof(key), "c/%d/%d/%d-%d", i % 10, i % 3, a->id, i);
        int bl = snprintf(body, sizeof(body), "body %d %d", a->id, i);
        if (ts_objstore_put(a->os, key, body, (size_t)bl, 0, a->err, sizeof(a->err)) != TS_OK) {
            a->failures++;
            continue;
        }
        uint8_t *b = NULL;
        size_t n = 0;
        if (ts_objstore_get(a->os, key, 0, TS_OBJSTORE_TO_END, &b, &n, a->err, sizeof(a->err)) !=
                TS_OK ||
            n != (size_t)bl || memcmp(b, body, n))
            a->failures++;
        free(b);
        if (i % 2 && ts_objstore_delete(a->os, key, a->err, sizeof(a->err)) != TS_OK)
            a->failures++;
    }
    return NULL;
}

TT_TEST(fs_concurrent_put_get_delete)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-conc");
    pthread_t th[CT_THREADS];
    conc_arg args[CT_THREADS];
    for (int i = 0; i < CT_THREADS; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].os = os;
        args[i].id = i;
        pthread_create(&th[i], NULL, conc_worker, &args[i]);
    }
    for (int i = 0; i < CT_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < CT_THREADS; i++)
        TT_ASSERT_MSG(args[i].failures == 0, "thread %d: %d failures, last: %s", i,
                      args[i].failures, args[i].err);
    int cnt = 0;
    TT_OKE(ts_objstore_list(os, "c/", count_cb, &cnt, ERR), g_err);
    TT_ASSERT_EQ_INT(cnt, CT_THREADS * CT_OBJS / 2);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    cleanup(os, dir);
}

/* ---- ENOSPC ------------------------------------------------------------- */

/* Runs in a child in its own mount namespace with a 64 KiB tmpfs: the only
 * cheap way to a real ENOSPC. Exit 0 pass, 1 fail, 77 cannot set up. */
static int enospc_child(const char *mnt)
{
    if (unshare(CLONE_NEWNS) != 0) return 77;
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return 77;
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) return 77;
    char err[512];
    ts_objstore *os = NULL;
    if (ts_objstore_fs_open(mnt, &os, err, sizeof(err)) != TS_OK) return 1;
    static uint8_t big[256 * 1024];
    ts_status st = ts_objstore_put(os, "full/obj", big, sizeof(big), 0, err, sizeof(err));
    if (st != TS_E_NOSPACE || !strstr(err, "'full/obj'") || !strstr(err, "No space")) {
        fprintf(stderr, "    put: %s: %s\n", ts_status_name(st), err);
        return 1;
    }
    ts_objstore_writer *w = NULL;
    if (ts_objstore_writer_open(os, "full/w", &w, err, sizeof(err)) != TS_OK) return 1;
    st = TS_OK;
    for (int i = 0; i < 8 && st == TS_OK; i++)
        st = ts_objstore_writer_write(w, big, sizeof(big) / 8 * 2, err, sizeof(err));
    if (st != TS_E_NOSPACE) return 1;
    /* A writer that failed refuses to commit, and leaves nothing. */
    if (ts_objstore_writer_commit(w, err, sizeof(err)) != TS_E_NOSPACE) return 1;
    if (count_tmp(mnt) != 0) return 1;
    uint64_t size;
    if (ts_objstore_head(os, "full/w", &size, err, sizeof(err)) != TS_E_NOT_FOUND) return 1;
    /* Space is back once the temp files are gone: small puts work. */
    if (ts_objstore_put(os, "small", "x", 1, 0, err, sizeof(err)) != TS_OK) return 1;
    ts_objstore_destroy(os);
    return 0;
}

TT_TEST(fs_enospc_maps_to_nospace)
{
    char mnt[512];
    tt_tmpdir(mnt, sizeof(mnt), "os-enospc");
    fflush(NULL);
    pid_t pid = fork();
    TT_ASSERT(pid >= 0);
    if (pid == 0) _exit(enospc_child(mnt));
    int ws = 0;
    TT_ASSERT(waitpid(pid, &ws, 0) == pid);
    rmdir(mnt);
    TT_ASSERT(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 77) TT_SKIP("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN)");
    TT_ASSERT_EQ_INT(WEXITSTATUS(ws), 0);
}

/* ---- request counters (the broker's object-store metrics) --------------- */

#define REQS(c, op, out) ((c).requests[TS_OBJSTORE_OP_##op][TS_OBJSTORE_OUTCOME_##out])

/* Every wrapper counts one request by outcome, and payload bytes put/got;
 * a streaming upload is one put, counted at its commit. */
TT_TEST(fs_request_counters)
{
    char dir[512];
    ts_objstore *os = open_fs(dir, sizeof(dir), "os-counters");
    ts_objstore_counters c;
    ts_objstore_counters_get(os, &c);
    TT_ASSERT_EQ_INT(REQS(c, PUT, OK) + REQS(c, GET, OK) + c.bytes_put + c.bytes_got, 0);
    TT_OKE(ts_objstore_put(os, "k/one", "12345", 5, 0, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "k/one", "x", 1, TS_PUT_IF_NONE_MATCH, ERR), TS_E_EXISTS);
    ts_objstore_writer *w = NULL;
    TT_OKE(ts_objstore_writer_open(os, "k/two", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "abc", 3, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "defg", 4, ERR), g_err);
    TT_OKE(ts_objstore_writer_commit(w, ERR), g_err);
    uint8_t *buf = NULL;
    size_t n = 0;
    TT_OKE(ts_objstore_get(os, "k/two", 1, 3, &buf, &n, ERR), g_err);
    free(buf);
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "k/none", 0, 1, &buf, &n, ERR), TS_E_NOT_FOUND);
    uint64_t size = 0;
    TT_OKE(ts_objstore_head(os, "k/one", &size, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "k/none", &size, ERR), TS_E_NOT_FOUND);
    listing l;
    memset(&l, 0, sizeof(l));
    TT_OKE(list_all(os, "k/", &l), g_err);
    TT_OKE(ts_objstore_delete(os, "k/one", ERR), g_err);
    /* a key the front door refuses never reaches a backend: not counted */
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "../x", 0, 1, &buf, &n, ERR), TS_E_INVAL);
    ts_objstore_counters_get(os, &c);
    TT_ASSERT_EQ_INT(REQS(c, PUT, OK), 2);
    TT_ASSERT_EQ_INT(REQS(c, PUT, ERROR), 1); /* the conditional put that found the key */
    TT_ASSERT_EQ_INT(REQS(c, GET, OK), 1);
    TT_ASSERT_EQ_INT(REQS(c, GET, NOTFOUND), 1);
    TT_ASSERT_EQ_INT(REQS(c, GET, ERROR), 0);
    TT_ASSERT_EQ_INT(REQS(c, HEAD, OK), 1);
    TT_ASSERT_EQ_INT(REQS(c, HEAD, NOTFOUND), 1);
    TT_ASSERT_EQ_INT(REQS(c, LIST, OK), 1);
    TT_ASSERT_EQ_INT(REQS(c, DELETE, OK), 1);
    TT_ASSERT_EQ_INT(c.bytes_put, 5 + 7);
    TT_ASSERT_EQ_INT(c.bytes_got, 3);
    cleanup(os, dir);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(fs_put_get_head_delete);
    TT_RUN(fs_ranged_get_edges);
    TT_RUN(fs_missing_keys);
    TT_RUN(fs_if_none_match);
    TT_RUN(fs_if_none_match_race);
    TT_RUN(fs_writer_commit);
    TT_RUN(fs_writer_abort);
    TT_RUN(fs_list_prefix_order_stop);
    TT_RUN(fs_tmp_dir_hidden_and_cleaned);
    TT_RUN(bad_keys_rejected);
    TT_RUN(bad_urls_rejected);
    TT_RUN(url_file_opens_fs);
    TT_RUN(fs_delete_many);
    TT_RUN(fs_concurrent_put_get_delete);
    TT_RUN(fs_enospc_maps_to_nospace);
    TT_RUN(fs_request_counters);
    return tt_summary();
}
