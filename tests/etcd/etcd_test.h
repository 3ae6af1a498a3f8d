/*
 * etcd_test.h — what the etcd client tests share (test_etcd_client.c: one
 * member; test_etcd_cluster.c: three): real etcd members (Debian's
 * etcd-server 3.4) started on free loopback ports in a temporary directory,
 * killed with SIGKILL or at exit, a client for a list of endpoints, a
 * readiness wait, a watch recorder. Header-only (static inline), like tt.h.
 */
#ifndef TS_TESTS_ETCD_TEST_H
#define TS_TESTS_ETCD_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "etcd/etcd.h"
#include "tt.h"

#define EOK(expr)                                                                                \
    do {                                                                                         \
        ts_etcd_status e_st = (expr);                                                            \
        if (e_st != TS_ETCD_OK) TT_FAIL_("%s -> %s: %s", #expr, ts_etcd_status_name(e_st), err); \
    } while (0)

static char err[2048];
static char etcd_bin[512];
static char tmp_root[512];

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------
 * etcd processes
 * ------------------------------------------------------------------------ */
typedef struct member {
    char name[16];
    int client_port, peer_port;
    char dir[600];
    pid_t pid;
} member;

#define MAX_MEMBERS 8
static member *all_members[MAX_MEMBERS];
static int nall_members;

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        perror("free_port");
        exit(2);
    }
    int p = ntohs(a.sin_port);
    close(fd);
    return p;
}

static inline int find_etcd(void)
{
    const char *e = getenv("ETCD_BIN");
    if (e && *e && access(e, X_OK) == 0) {
        snprintf(etcd_bin, sizeof(etcd_bin), "%s", e);
        return 1;
    }
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/local/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(etcd_bin, sizeof(etcd_bin), "%s/etcd", d);
        if (access(etcd_bin, X_OK) == 0) return 1;
    }
    return 0;
}

static inline void member_init(member *m, const char *name)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->client_port = free_port();
    m->peer_port = free_port();
    while (m->peer_port == m->client_port) m->peer_port = free_port();
    snprintf(m->dir, sizeof(m->dir), "%s/%s", tmp_root, name);
    mkdir(m->dir, 0700);
    if (nall_members < MAX_MEMBERS) all_members[nall_members++] = m;
}

/* cluster: "n1=http://127.0.0.1:p,..." */
static inline void member_start(member *m, const char *cluster)
{
    char data[700], client[64], peer[64], logf[700];
    snprintf(data, sizeof(data), "%s/data", m->dir);
    snprintf(client, sizeof(client), "http://127.0.0.1:%d", m->client_port);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", m->peer_port);
    snprintf(logf, sizeof(logf), "%s/etcd.log", m->dir);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(etcd_bin, etcd_bin, "--name", m->name, "--data-dir", data, "--listen-client-urls",
              client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
              "--initial-cluster-token", "ts-etcd-test", "--heartbeat-interval", "50",
              "--election-timeout", "500", "--logger", "zap", "--log-outputs", "stderr",
              (char *)NULL);
        _exit(127);
    }
    m->pid = pid;
}

static inline void member_kill(member *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
    }
}

static inline void kill_all(void)
{
    for (int i = 0; i < nall_members; i++) member_kill(all_members[i]);
}

static inline void on_signal(int sig)
{
    kill_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static inline void endpoint_of(const member *m, char *out, size_t len)
{
    snprintf(out, len, "127.0.0.1:%d", m->client_port);
}

static inline ts_etcd *client_for(const char *endpoints, int64_t op_timeout_ms)
{
    ts_etcd_opts o;
    ts_etcd_opts_default(&o);
    o.endpoints = endpoints;
    o.op_timeout_ms = op_timeout_ms;
    o.request_timeout_ms = op_timeout_ms < 2000 ? op_timeout_ms : 2000;
    ts_etcd *c = NULL;
    if (ts_etcd_create(&o, &c, err, sizeof(err))) {
        fprintf(stderr, "ts_etcd_create(%s): %s\n", endpoints, err);
        exit(2);
    }
    return c;
}

/* Waits until a read through endpoints succeeds (etcd up, leader elected). */
static inline int wait_ready(const char *endpoints, int64_t timeout_ms)
{
    ts_etcd *c = client_for(endpoints, 1000);
    int64_t until = now_ms() + timeout_ms;
    int ok = 0;
    while (now_ms() < until) {
        ts_etcd_resp r;
        if (ts_etcd_get(c, "ready", 5, 0, 0, &r, err, sizeof(err)) == TS_ETCD_OK) {
            ts_etcd_resp_free(&r);
            ok = 1;
            break;
        }
        sleep_ms(50);
    }
    ts_etcd_destroy(c);
    return ok;
}

/* ------------------------------------------------------------------------
 * watch
 * ------------------------------------------------------------------------ */
#define WMAX 512
typedef struct wrec {
    pthread_mutex_t mu;
    int n;
    int type[WMAX];
    int64_t rev[WMAX];
    char key[WMAX][32];
    char val[WMAX][32];
    int disconnects, compacted, failed, bad;
    int64_t compact_rev;
    char last_msg[512];
} wrec;

static inline void on_watch(void *arg, const ts_etcd_watch_update *u)
{
    wrec *w = arg;
    pthread_mutex_lock(&w->mu);
    if (u->kind == TS_ETCD_WATCH_EVENTS) {
        for (size_t i = 0; i < u->nevents; i++) {
            if (w->n >= WMAX) {
                w->bad++;
                break;
            }
            const ts_etcd_event *e = &u->events[i];
            w->type[w->n] = e->type;
            w->rev[w->n] = e->kv.mod_revision;
            snprintf(w->key[w->n], 32, "%.*s", (int)e->kv.key_len, e->kv.key);
            snprintf(w->val[w->n], 32, "%.*s", (int)e->kv.value_len, e->kv.value);
            w->n++;
        }
        if (u->next_revision != w->rev[w->n - 1] + 1) w->bad++;
    } else {
        if (u->kind == TS_ETCD_WATCH_DISCONNECTED) w->disconnects++;
        if (u->kind == TS_ETCD_WATCH_COMPACTED) {
            w->compacted++;
            w->compact_rev = u->compact_revision;
        }
        if (u->kind == TS_ETCD_WATCH_FAILED) w->failed++;
        snprintf(w->last_msg, sizeof(w->last_msg), "%s", u->message ? u->message : "");
    }
    pthread_mutex_unlock(&w->mu);
}

static inline int wrec_count(wrec *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

static inline int wait_events(wrec *w, int n, int64_t timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;
    while (wrec_count(w) < n && now_ms() < until) sleep_ms(10);
    return wrec_count(w) >= n;
}

static inline void rm_rf(const char *p)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", p);
}

#endif
