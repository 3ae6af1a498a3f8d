/*
 * test_s3_faults.c — the S3 suite under injected faults: faultproxy.py sits
 * between the client and the server and answers 5xx/SlowDown, drops requests
 * or answers, truncates bodies and delays; every operation must retry within
 * its deadline and never hand out short bytes.
 *
 * A body corrupted in flight must be refused by the store (its signed
 * SHA-256 no longer matches) and sent again, with or without Content-MD5.
 *
 *   test_s3_faults [--group faults] [test...]
 */
#include "s3_suite.h"
#include "tt_proc.h"

/* ------------------------------------------------------------------ faults */

static pid_t g_proxy_pid = -1;
static int g_proxy_port;

static int proxy_start(void)
{
    const char *ep = g_endpoint;
    const char *hp = strstr(ep, "://");
    if (!hp || strncmp(ep, "http://", 7)) {
        fprintf(stderr, "    faults need a plain http endpoint, not %s\n", ep);
        return -1;
    }
    char upstream[256];
    snprintf(upstream, sizeof(upstream), "%s", hp + 3);
    upstream[strcspn(upstream, "/")] = '\0';
    if (!strchr(upstream, ':')) strcat(upstream, ":80");
    char e[256];
    if (tt_proc_start((char *[]){"/usr/bin/python3", TS_FAULTPROXY, "--upstream", upstream, NULL},
                      &g_proxy_pid, &g_proxy_port, e, sizeof(e))) {
        fprintf(stderr, "    %s\n", e);
        return -1;
    }
    return 0;
}

static void proxy_stop(void) { tt_proc_stop(&g_proxy_pid); }

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    ts_buf *b = ud;
    ts_buf_append(b, p, s * n);
    return s * n;
}

static long g_proxy_faults; /* faults the proxy injected, as of the last proxy_ctl */

/* Sends a control request; returns the number of requests the proxy saw
 * (and sets g_proxy_faults), -1 on failure. */
static long proxy_ctl(const char *path)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__faults__/%s", g_proxy_port, path);
    CURL *h = curl_easy_init();
    ts_buf b;
    ts_buf_init(&b, 4096);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    long reqs = -1;
    ts_buf_append(&b, "", 1);
    if (rc == CURLE_OK && code == 200)
        sscanf((char *)b.data, "requests=%ld faults=%ld", &reqs, &g_proxy_faults);
    ts_buf_free(&b);
    return reqs;
}

static ts_objstore *open_via_proxy(ts_config *cfg)
{
    char ep[128];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", g_proxy_port);
    ts_config_set(cfg, "aws.endpoint.url", ep, NULL, 0);
    return open_store(cfg);
}

TT_TEST(faults_put_retries_5xx_and_drops)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_via_proxy, NULL);
    TT_CHECK(os);
    size_t n = 200000;
    uint8_t *data = malloc(n);
    gen(11, 0, data, n);
    TT_CHECK(proxy_ctl("set?rules=slowdown:2:PUT,err500:1:PUT,drop_req:1:PUT") >= 0);
    TT_CHECK_OKE(ts_objstore_put(os, "faults/put", data, n, 0, err, sizeof(err)), err);
    ts_s3_stats s = stats(os);
    /* libcurl itself resends once on a connection that died before any
     * answer, so the proxy may see one request more than we count. */
    TT_CHECK_EQ_INT(proxy_ctl("stats"), 5);
    TT_CHECK_EQ_INT(g_proxy_faults, 4);
    TT_CHECK(s.retries >= 3 && s.requests >= 4);
    proxy_ctl("reset");
    uint8_t *out;
    size_t got;
    TT_CHECK_OKE(
        ts_objstore_get(os, "faults/put", 0, TS_OBJSTORE_TO_END, &out, &got, err, sizeof(err)),
        err);
    TT_CHECK(got == n && !memcmp(out, data, n));
    free(out);
    free(data);
done:
    fixture_close(&fx);
}
TT_TEST(faults_conditional_put_answer_lost)
{
    /* The PUT lands but its answer is dropped; the retry meets 412 and must
     * recognise its own object instead of reporting TS_E_EXISTS. */
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_via_proxy, NULL);
    TT_CHECK(os);
    const char *body = "{\"manifest\": 1, \"padding\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    proxy_ctl("set?rules=drop_resp:1:PUT");
    TT_CHECK_OKE(ts_objstore_put(os, "faults/cond", body, strlen(body), TS_PUT_IF_NONE_MATCH, err,
                                 sizeof(err)),
                 err);
    proxy_ctl("reset");
    /* Someone else's object is still refused. */
    TT_CHECK_EQ_INT(
        ts_objstore_put(os, "faults/cond", "other", 5, TS_PUT_IF_NONE_MATCH, err, sizeof(err)),
        TS_E_EXISTS);
done:
    fixture_close(&fx);
}
TT_TEST(faults_get_retries_and_never_returns_truncated)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_via_proxy, "remote.storage.operation.timeout.ms=3000",
                                   "remote.storage.request.timeout.ms=1000", NULL);
    TT_CHECK(os);
    size_t n = 300000;
    uint8_t *data = malloc(n);
    gen(12, 0, data, n);
    proxy_ctl("reset");
    TT_CHECK_OKE(ts_objstore_put(os, "faults/get", data, n, 0, err, sizeof(err)), err);
    uint8_t *out = NULL;
    size_t got = 0;
    /* Transient: 500, SlowDown, dropped mid-body, short body, latency spike. */
    const char *rules[] = {"err500:2:GET", "slowdown:2:GET", "drop_resp:2:GET", "short:2:GET",
                           "delay:1:GET:1500"};
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        char q[128];
        snprintf(q, sizeof(q), "set?rules=%s", rules[i]);
        TT_CHECK(proxy_ctl(q) >= 0);
        TT_CHECK_OKE(ts_objstore_get(os, "faults/get", 1000, 200000, &out, &got, err, sizeof(err)),
                     err);
        TT_CHECK_MSG(got == 200000 && !memcmp(out, data + 1000, got), "ranged get under %s",
                     rules[i]);
        free(out);
        TT_CHECK(proxy_ctl(q) >= 0);
        TT_CHECK_OKE(
            ts_objstore_get(os, "faults/get", 0, TS_OBJSTORE_TO_END, &out, &got, err, sizeof(err)),
            err);
        TT_CHECK_MSG(got == n && !memcmp(out, data, n), "full get under %s", rules[i]);
        free(out);
    }
    /* Persistent truncation: fails (retriable) once the deadline passes,
     * and never hands out the short bytes. */
    const char *forever[] = {"short:-1:GET", "drop_resp:-1:GET", "slowdown:-1:GET"};
    for (size_t i = 0; i < 3; i++) {
        char q[128];
        snprintf(q, sizeof(q), "set?rules=%s", forever[i]);
        proxy_ctl(q);
        out = (uint8_t *)"sentinel";
        got = 12345;
        int64_t t0 = ts_mono_ms();
        ts_status st = ts_objstore_get(os, "faults/get", 0, 100000, &out, &got, err, sizeof(err));
        int64_t took = ts_mono_ms() - t0;
        fprintf(stderr, "    %s -> %s in %lld ms: %s\n", forever[i], ts_status_name(st),
                (long long)took, err);
        TT_CHECK(st != TS_OK && ts_status_is_retriable(st));
        TT_CHECK(out == NULL && got == 0);
        TT_CHECK(strstr(err, "gave up after") != NULL);
        TT_CHECK_MSG(took < 3000 + 1500, "deadline respected (%lld ms)", (long long)took);
    }
    /* A latency spike longer than the deadline: TS_E_TIMEOUT. */
    proxy_ctl("set?rules=delay:-1:GET:5000");
    ts_status st = ts_objstore_get(os, "faults/get", 0, 100, &out, &got, err, sizeof(err));
    fprintf(stderr, "    delay:-1 -> %s: %s\n", ts_status_name(st), err);
    TT_CHECK_EQ_INT(st, TS_E_TIMEOUT);
    proxy_ctl("reset");
    free(data);
done:
    fixture_close(&fx);
}
TT_TEST(faults_multipart_completes)
{
    fixture fx, fx2 = {0};
    ts_objstore *os = fixture_open(&fx, open_via_proxy, "s3.multipart.part.bytes=5242880",
                                   "s3.multipart.parallelism=3", NULL);
    TT_CHECK(os);
    uint64_t total = 17 * MiB + 3;
    TT_CHECK(proxy_ctl("set?rules=slowdown:2:PUT,drop_req:1:PUT,err500:1:POST,drop_resp:1:PUT,"
                       "delay:2:PUT:300") >= 0);
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "faults/mp", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 13, total, 999999), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    proxy_ctl("stats");
    TT_CHECK_EQ_INT(g_proxy_faults, 7); /* every injected fault was hit and survived */
    /* libcurl resends on its own when a connection dies before any answer
     * (drop_req), so not every injected fault is one of our retries. */
    TT_CHECK(stats(os).retries >= 3);
    proxy_ctl("reset");
    uint64_t offs[] = {0, 5 * MiB - 3, 15 * MiB + 1, total - 10};
    TT_CHECK(verify_ranges(os, "faults/mp", 13, total, offs, 4, 65536));
    /* A part that keeps failing: commit fails, the upload is aborted. */
    ts_objstore *os2 = fixture_open(&fx2, open_via_proxy, "s3.multipart.part.bytes=5242880",
                                    "s3.multipart.parallelism=3",
                                    "remote.storage.operation.timeout.ms=2000", NULL);
    TT_CHECK(os2);
    TT_CHECK_OKE(ts_objstore_writer_open(os2, "faults/mp-fail", &w, err, sizeof(err)), err);
    proxy_ctl("set?rules=err500:-1:PUT");
    ts_status st = write_gen(w, 14, 12 * MiB, MiB);
    if (st == TS_OK)
        st = ts_objstore_writer_commit(w, err, sizeof(err));
    else
        ts_objstore_writer_abort(w);
    fprintf(stderr, "    failing parts -> %s: %s\n", ts_status_name(st), err);
    TT_CHECK(st != TS_OK);
    proxy_ctl("reset");
    TT_CHECK_EQ_INT(ts_objstore_head(os2, "faults/mp-fail", &hsize, err, sizeof(err)),
                    TS_E_NOT_FOUND);
done:
    fixture_close(&fx2);
    fixture_close(&fx);
}

/* One byte flipped between client and store, in a single PUT and in two
 * UploadParts: the store refuses each (XAmzContentSHA256Mismatch, or
 * BadDigest with Content-MD5), the client sends it again, and the object
 * reads back exactly as written. Without the store's check the flipped
 * byte would be stored and the read-back would differ. */
static int corrupt_then_verify(const char *md5_setting)
{
    int ok = 0;
    size_t n = 300000, got = 0;
    uint8_t *data = malloc(n), *out = NULL;
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_via_proxy, "s3.multipart.part.bytes=5242880",
                                   "s3.multipart.parallelism=2", md5_setting, NULL);
    TT_CHECK(os && data);
    gen(15, 0, data, n);
    TT_CHECK(proxy_ctl("set?rules=corrupt:1:PUT") >= 0);
    TT_CHECK_OKE(ts_objstore_put(os, "faults/corrupt", data, n, 0, err, sizeof(err)), err);
    proxy_ctl("stats");
    TT_CHECK_EQ_INT(g_proxy_faults, 1);
    TT_CHECK(stats(os).retries >= 1);
    proxy_ctl("reset");
    TT_CHECK_OKE(ts_objstore_get(os, "faults/corrupt", 0, TS_OBJSTORE_TO_END, &out, &got, err,
                                 sizeof(err)),
                 err);
    TT_CHECK(got == n && !memcmp(out, data, n));
    uint64_t total = 11 * MiB + 5;
    TT_CHECK(proxy_ctl("set?rules=corrupt:2:PUT") >= 0);
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "faults/corrupt-mp", &w, err, sizeof(err)), err);
    ts_status wst = write_gen(w, 16, total, 999999);
    if (wst) ts_objstore_writer_abort(w); /* its part threads are done with the store */
    TT_CHECK_OKE(wst, err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    proxy_ctl("stats");
    TT_CHECK_EQ_INT(g_proxy_faults, 2);
    proxy_ctl("reset");
    /* Whichever two of the three parts' sends were hit: all of it, read back. */
    uint64_t whole[] = {0};
    TT_CHECK(verify_ranges(os, "faults/corrupt-mp", 16, total, whole, 1, total));
    ok = 1;
done:
    proxy_ctl("reset");
    free(data);
    free(out);
    fixture_close(&fx);
    return ok;
}

TT_TEST(faults_corrupted_body_refused_and_resent)
{
    TT_CHECK_MSG(corrupt_then_verify(NULL), "signed SHA-256 only (the default)");
    TT_CHECK_MSG(corrupt_then_verify("s3.content.md5=true"), "with Content-MD5");
done:;
}

TT_TEST(faults_list_and_delete_many)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_via_proxy, NULL);
    TT_CHECK(os);
    proxy_ctl("reset");
    char names[40][32];
    const char *keys[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "faults/l/%02d", i);
        keys[i] = names[i];
        TT_CHECK_OKE(ts_objstore_put(os, keys[i], "y", 1, 0, err, sizeof(err)), err);
    }
    ts_objstore_s3_set_list_page(os, 7);
    proxy_ctl("set?rules=err500:2:GET,drop_resp:1:GET,short:1:GET");
    size_t n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "faults/l/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 40);
    proxy_ctl("set?rules=slowdown:1:POST,drop_req:1:POST");
    TT_CHECK_OKE(ts_objstore_delete_many(os, keys, 40, err, sizeof(err)), err);
    proxy_ctl("reset");
    n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "faults/l/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);
done:
    fixture_close(&fx);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    int rc = s3_suite_start(argc, argv);
    if (rc) return rc;
    if (GROUP("faults")) {
        if (proxy_start()) {
            printf("faultproxy failed to start\n");
            return 1;
        }
        TT_RUN(faults_put_retries_5xx_and_drops);
        TT_RUN(faults_conditional_put_answer_lost);
        TT_RUN(faults_get_retries_and_never_returns_truncated);
        TT_RUN(faults_multipart_completes);
        TT_RUN(faults_corrupted_body_refused_and_resent);
        TT_RUN(faults_list_and_delete_many);
        proxy_stop();
    }
    wipe_prefix();
    return tt_summary();
}
