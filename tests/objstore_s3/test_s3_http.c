/*
 * test_s3_http.c — unit tests of one S3 request (objstore/s3_http.c)
 * against a loopback HTTP listener in this process, so they need no S3
 * server: every header a request carries reaches the wire, and a request
 * with more headers than S3_REQ_HEADERS_MAX is refused with an error that
 * names the limit before anything is sent (it used to drop the extra
 * headers silently); a body is signed with its SHA-256 and hashed once
 * however often it is sent, and carries Content-MD5 only where it should.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "objstore/s3_internal.h"
#include "tt.h"

/* ------------------------------------------------------------ the listener */

/* Answers every request 200 with an empty body (503 SlowDown to the first
 * `fail` requests), after reading its body (Content-Length bytes), and
 * keeps the last one's head (request line and headers). */
typedef struct listener {
    int fd, port;
    pthread_t th;
    pthread_mutex_t mu;
    int requests;     /* guarded by mu */
    int fail;         /* guarded by mu */
    char last[65536]; /* guarded by mu */
} listener;

/* Reads and drops what is left of the body after the head in head[0..n). */
static void drain_body(int c, const char *head, size_t n)
{
    const char *cl = strcasestr(head, "\r\ncontent-length:");
    const char *end = strstr(head, "\r\n\r\n");
    if (!cl || !end) return;
    long long left = atoll(cl + 17) - (long long)(n - (size_t)(end + 4 - head));
    char buf[65536];
    while (left > 0) {
        ssize_t k = read(c, buf, left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf));
        if (k <= 0) return;
        left -= k;
    }
}

static void *serve(void *arg)
{
    listener *l = arg;
    for (;;) {
        int c = accept(l->fd, NULL, NULL);
        if (c < 0) return NULL; /* shutdown() ends the loop */
        char head[sizeof(l->last)];
        size_t n = 0;
        while (n < sizeof(head) - 1) {
            ssize_t k = read(c, head + n, sizeof(head) - 1 - n);
            if (k <= 0) break;
            n += (size_t)k;
            head[n] = '\0';
            if (strstr(head, "\r\n\r\n")) break;
        }
        head[n] = '\0';
        drain_body(c, head, n);
        pthread_mutex_lock(&l->mu);
        l->requests++;
        int fail = l->fail > 0 ? l->fail-- : 0;
        memcpy(l->last, head, n + 1);
        pthread_mutex_unlock(&l->mu);
        static const char ok[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        static const char slow[] =
            "HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = fail ? write(c, slow, sizeof(slow) - 1) : write(c, ok, sizeof(ok) - 1);
        (void)w;
        close(c);
    }
}

static int listener_start(listener *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&a, sizeof(a)) || listen(l->fd, 8) ||
        getsockname(l->fd, (struct sockaddr *)&a, &al))
        return -1;
    l->port = ntohs(a.sin_port);
    return pthread_create(&l->th, NULL, serve, l) ? -1 : 0;
}

static void listener_stop(listener *l)
{
    shutdown(l->fd, SHUT_RDWR);
    pthread_join(l->th, NULL);
    close(l->fd);
    pthread_mutex_destroy(&l->mu);
}

/* --------------------------------------------------------------- helpers */

static char err[4096];

/* extra: "key=value" settings, NULL-terminated, or NULL. */
static s3_store *open_store_with(int port, const char *const *extra)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
    ts_config *cfg = ts_config_create();
    ts_config_set(cfg, "aws.endpoint.url", ep, NULL, 0);
    ts_config_set(cfg, "aws.access.key.id", "AKIDTEST", NULL, 0);
    ts_config_set(cfg, "aws.secret.access.key", "secret", NULL, 0);
    ts_config_set(cfg, "aws.region", "us-east-1", NULL, 0);
    ts_config_set(cfg, "remote.storage.request.timeout.ms", "5000", NULL, 0);
    ts_config_set(cfg, "remote.storage.operation.timeout.ms", "5000", NULL, 0);
    for (; extra && *extra; extra++) {
        char k[128];
        snprintf(k, sizeof(k), "%s", *extra);
        char *eq = strchr(k, '=');
        *eq = '\0';
        ts_config_set(cfg, k, eq + 1, NULL, 0);
    }
    ts_objstore *os = NULL;
    ts_status st = ts_objstore_s3_open("s3://bucket/prefix/", cfg, &os, err, sizeof(err));
    ts_config_destroy(cfg);
    if (st) fprintf(stderr, "    cannot open: %s\n", err);
    return (s3_store *)os;
}

static s3_store *open_store(int port) { return open_store_with(port, NULL); }

/* GETs key "k" with n extra headers "x-amz-meta-hN: vN". */
static ts_status get_with_headers(s3_store *s, size_t n)
{
    ts_s3_kv *hs = calloc(n ? n : 1, sizeof(*hs));
    char(*names)[32] = calloc(n ? n : 1, sizeof(*names));
    char(*values)[32] = calloc(n ? n : 1, sizeof(*values));
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "x-amz-meta-h%zu", i);
        snprintf(values[i], sizeof(values[i]), "v%zu", i);
        hs[i] = (ts_s3_kv){names[i], values[i]};
    }
    s3_req rq = {.method = "GET", .key = "k", .hdrs = hs, .nhdrs = n, .what = "GET"};
    s3_resp rs;
    s3_resp_init(&rs, 1 << 20);
    ts_retry r;
    s3_retry_init(s, &r);
    err[0] = '\0';
    ts_status st = s3_do(s, &rq, &rs, &r, err, sizeof(err));
    s3_resp_free(&rs);
    free(hs);
    free(names);
    free(values);
    return st;
}

/* A GET without a body or session token signs 3 headers of its own. */
#define OWN_HEADERS 3

/* ------------------------------------------------------------------ tests */

TT_TEST(headers_up_to_the_limit_are_all_sent)
{
    listener l;
    TT_ASSERT(listener_start(&l) == 0);
    s3_store *s = open_store(l.port);
    ts_status st = s ? get_with_headers(s, S3_REQ_HEADERS_MAX - OWN_HEADERS) : TS_E_INVAL;
    int requests, missing = -1;
    char last[sizeof(l.last)];
    pthread_mutex_lock(&l.mu);
    requests = l.requests;
    memcpy(last, l.last, sizeof(last));
    pthread_mutex_unlock(&l.mu);
    for (size_t i = 0; i < S3_REQ_HEADERS_MAX - OWN_HEADERS && missing < 0; i++) {
        char line[64];
        snprintf(line, sizeof(line), "\r\nx-amz-meta-h%zu: v%zu\r\n", i, i);
        if (!strstr(last, line)) missing = (int)i;
    }
    ts_objstore_destroy(s ? &s->base : NULL);
    listener_stop(&l);
    TT_ASSERT(s != NULL);
    TT_OKE(st, err);
    TT_ASSERT_EQ_INT(requests, 1);
    TT_ASSERT_MSG(missing < 0, "header x-amz-meta-h%d missing from:\n%s", missing, last);
    TT_ASSERT(strstr(last, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-h0;"));
}

TT_TEST(headers_over_the_limit_are_refused_not_dropped)
{
    listener l;
    TT_ASSERT(listener_start(&l) == 0);
    s3_store *s = open_store(l.port);
    ts_status one_over = TS_E_INVAL, many = TS_E_INVAL;
    char err_one_over[sizeof(err)] = "";
    if (s) {
        one_over = get_with_headers(s, S3_REQ_HEADERS_MAX - OWN_HEADERS + 1);
        snprintf(err_one_over, sizeof(err_one_over), "%s", err);
        many = get_with_headers(s, 25);
    }
    ts_s3_stats stats = {0};
    if (s) ts_objstore_s3_stats(&s->base, &stats);
    pthread_mutex_lock(&l.mu);
    int requests = l.requests;
    pthread_mutex_unlock(&l.mu);
    ts_objstore_destroy(s ? &s->base : NULL);
    listener_stop(&l);
    TT_ASSERT(s != NULL);
    TT_ASSERT_EQ_INT(one_over, TS_E_INVAL);
    TT_ASSERT_MSG(strstr(err_one_over, "S3_REQ_HEADERS_MAX 24"), "message: %s", err_one_over);
    TT_ASSERT_EQ_INT(many, TS_E_INVAL);
    TT_ASSERT_MSG(strstr(err, "25 extra request headers exceed the limit of 21"), "message: %s",
                  err);
    TT_ASSERT_EQ_INT(requests, 0);       /* nothing reached the wire */
    TT_ASSERT_EQ_INT(stats.requests, 0); /* and nothing was counted as sent */
    TT_ASSERT_EQ_INT(stats.retries, 0);  /* a refusal is not retried */
}

/* Sends one request with a body (rq->method, 200000 bytes); returns the
 * status, the head the listener saw last, the requests it saw and the
 * store's counters. */
typedef struct sent {
    ts_status st;
    int requests;
    char head[65536];
    ts_s3_stats stats;
} sent;

#define BODY_LEN 200000

static void send_body(const char *method, const char *const *extra, int fail, sent *out)
{
    listener l;
    memset(out, 0, sizeof(*out));
    out->st = TS_E_INVAL;
    if (listener_start(&l)) return;
    l.fail = fail;
    s3_store *s = open_store_with(l.port, extra);
    uint8_t *body = malloc(BODY_LEN);
    for (size_t i = 0; body && i < BODY_LEN; i++) body[i] = (uint8_t)(i * 7 + 3);
    if (s && body) {
        s3_req rq = {
            .method = method, .key = "k", .body = body, .body_len = BODY_LEN, .what = method};
        s3_resp rs;
        s3_resp_init(&rs, 1 << 20);
        ts_retry r;
        s3_retry_init(s, &r);
        out->st = s3_do(s, &rq, &rs, &r, err, sizeof(err));
        s3_resp_free(&rs);
        ts_objstore_s3_stats(&s->base, &out->stats);
    }
    ts_objstore_destroy(s ? &s->base : NULL);
    listener_stop(&l);
    out->requests = l.requests;
    memcpy(out->head, l.last, sizeof(out->head));
    free(body);
}

/* "\r\nname: value\r\n" of the body's digest, as the wire should show it. */
static void want_header(const char *name, int md5, char *out, size_t len)
{
    uint8_t *body = malloc(BODY_LEN);
    for (size_t i = 0; i < BODY_LEN; i++) body[i] = (uint8_t)(i * 7 + 3);
    char d[65];
    if (md5)
        ts_s3_md5(body, BODY_LEN, NULL, d);
    else
        ts_s3_sha256_hex(body, BODY_LEN, d);
    snprintf(out, len, "\r\n%s: %s\r\n", name, d);
    free(body);
}

TT_TEST(put_signs_its_sha256_without_md5_by_default)
{
    static sent o; /* large: not on the stack */
    send_body("PUT", NULL, 0, &o);
    TT_OKE(o.st, err);
    char sha[128];
    want_header("x-amz-content-sha256", 0, sha, sizeof(sha));
    TT_ASSERT_MSG(strstr(o.head, sha), "no %s in:\n%s", sha, o.head);
    TT_ASSERT_MSG(!strcasestr(o.head, "content-md5"), "Content-MD5 sent:\n%s", o.head);
    TT_ASSERT(strstr(o.head, "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
}

TT_TEST(content_md5_on_put_when_configured_and_on_post_always)
{
    static sent o;
    const char *const md5_on[] = {"s3.content.md5=true", NULL};
    char md5[128];
    want_header("content-md5", 1, md5, sizeof(md5));
    send_body("PUT", md5_on, 0, &o);
    TT_OKE(o.st, err);
    TT_ASSERT_MSG(strstr(o.head, md5), "no %s in:\n%s", md5, o.head);
    TT_ASSERT(strstr(o.head, "SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date,"));
    send_body("POST", NULL, 0, &o); /* DeleteObjects needs it whatever the setting */
    TT_OKE(o.st, err);
    TT_ASSERT_MSG(strstr(o.head, md5), "no %s in:\n%s", md5, o.head);
}

TT_TEST(retried_body_is_hashed_once_and_sent_with_the_same_digest)
{
    static sent o;
    const char *const md5_on[] = {"s3.content.md5=true", NULL};
    send_body("PUT", md5_on, 2, &o); /* two SlowDowns, then 200 */
    TT_OKE(o.st, err);
    TT_ASSERT_EQ_INT(o.requests, 3);
    TT_ASSERT_EQ_INT(o.stats.retries, 2);
    TT_ASSERT_EQ_INT(o.stats.bytes_hashed, BODY_LEN); /* not once per attempt */
    char sha[128], md5[128];
    want_header("x-amz-content-sha256", 0, sha, sizeof(sha));
    want_header("content-md5", 1, md5, sizeof(md5));
    TT_ASSERT_MSG(strstr(o.head, sha) && strstr(o.head, md5), "last attempt:\n%s", o.head);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    /* libcurl honours proxy variables; the listener is on loopback. */
    const char *proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) unsetenv(proxies[i]);
    TT_RUN(headers_up_to_the_limit_are_all_sent);
    TT_RUN(headers_over_the_limit_are_refused_not_dropped);
    TT_RUN(put_signs_its_sha256_without_md5_by_default);
    TT_RUN(content_md5_on_put_when_configured_and_on_post_always);
    TT_RUN(retried_body_is_hashed_once_and_sent_with_the_same_digest);
    return tt_summary();
}
