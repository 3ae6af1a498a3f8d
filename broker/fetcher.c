/*
 * fetcher.c — the follower's fetchers: one per leader broker, as Kafka's
 * ReplicaFetcherThread, each a thread holding one Kafka client connection
 * to that broker.
 *
 * Why a thread with a blocking socket, not the loop: a Fetch to the leader
 * is a long poll (replica.fetch.wait.max.ms) and a leader frozen by SIGSTOP
 * answers nothing until the socket timeout; a thread keeps both away from
 * the loop without a second event machine. The thread only moves bytes:
 * it builds a request from a snapshot of its entries, waits for the answer
 * and posts it to the loop (net_post), where replica.c applies it (appends,
 * high watermark, errors) and updates the entries. One request per fetcher
 * is in flight and the next one is built only after the loop applied the
 * previous answer, so each Fetch carries the log end the last one produced.
 *
 * Partitions that must first find where their log diverges from the
 * leader's (step RF_EPOCH) get an OffsetForLeaderEpoch before any Fetch;
 * partitions refused by the leader wait until their retry time.
 *
 * Security (Kafka's inter-broker client): the fetcher connects to the
 * leader's listener named by inter.broker.listener.name (cluster.h,
 * cl_interbroker), at the address the leader registered for it. On an SSL or
 * SASL_SSL listener the TLS handshake runs right after connect (tls.c's
 * client side, blocking on this thread); on SASL_* it then logs in with
 * SaslHandshake v1 and SaslAuthenticate v2 (PLAIN, or SCRAM through
 * auth/'s client) as the broker's own user, before any Fetch. A connection
 * or login that fails is retried with a doubling backoff (200 ms .. 1 s) and
 * logged once, then once every 30 s while it keeps failing (with the
 * attempts in between), and once more when it works again; the password is
 * never logged. A leader that limits SASL sessions (connections.max.reauth.ms)
 * is logged in to again on a new connection before the session ends (Kafka
 * clients re-authenticate on the same one; tierbroker's server allows that
 * too, a reconnect is simpler here and costs one TLS handshake per lifetime). Meanwhile the follower fetches nothing, so the leader drops
 * it from the ISR after replica.lag.time.max.ms.
 *
 * Locking: f->mu guards the entries, the address, inflight and stop; the
 * loop takes it only for short copies (never across I/O). The socket is the
 * thread's; the loop may shutdown(2) it under f->mu to wake a blocked read
 * (address change, shutdown).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth/scram.h"
#include "replica.h"

/* Largest answer accepted from a leader: the fetch response bound plus
 * headroom for one oversized batch. */
#define FETCHER_MAX_FRAME (64u << 20)
#define FETCHER_CONNECT_MS 5000
#define FETCHER_BACKOFF_MS 200
#define FETCHER_BACKOFF_MAX_MS 1000 /* Kafka's reconnect.backoff.max.ms */
#define FETCHER_FAIL_LOG_MS 30000

typedef struct fentry {
    rpart *rp; /* identity; the thread reads only rp->topic (immutable) */
    kc_fetch_part fp;
    int step;
    int active;
    int64_t retry_at_ms;
} fentry;

struct fetcher {
    struct fetcher *next;
    broker *b;
    int32_t leader_id;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char host[256];
    int port;
    int addr_gen, conn_gen;
    fentry *e;
    size_t n, cap;
    int inflight;
    int stop;
    int fd;
    void *ssl; /* the thread's; NULL on PLAINTEXT and SASL_PLAINTEXT */
    int32_t corr;
    /* connection failures, the thread's alone */
    int64_t backoff_ms;
    int64_t fail_logged_ms; /* 0: the last connection worked */
    int fails_unlogged;
    int64_t session_end_ms; /* SASL: log in again from then on (0: never) */
    /* settings, fixed at start */
    int32_t max_wait_ms, max_bytes, part_max_bytes, socket_timeout_ms;
    char client_id[64];
};

/* One answer on its way to the loop. */
typedef struct fanswer {
    bjob j;
    fetcher *f;
    int epochs; /* OffsetForLeaderEpoch (1) or Fetch (0) */
    kc_fetch_part *req;
    size_t nreq;
    uint8_t *frame;
    size_t len;
} fanswer;

/* ------------------------------------------------------------- the wire */

static int64_t cfg_int(broker *b, const char *key, int64_t def)
{
    const char *v = bconfig_get(&b->cfg, key);
    return v && *v ? strtoll(v, NULL, 10) : def;
}

static void sock_timeouts(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A connected socket to host:port within FETCHER_CONNECT_MS, or -1. */
static int connect_to(const char *host, int port, int timeout_ms)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, ps, &hints, &res) != 0 || !res) return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (poll(&pfd, 1, FETCHER_CONNECT_MS) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        close(fd);
        return -1;
    }
    int one = 1, fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sock_timeouts(fd, timeout_ms);
    return fd;
}

/* The socket and its TLS session, as the thread uses them. */
typedef struct fsock {
    int fd;
    void *ssl;
} fsock;

static int write_all(const fsock *s, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = s->ssl ? tls_client_write(s->ssl, p, n) : send(s->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && !s->ssl && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(const fsock *s, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = s->ssl ? tls_client_read(s->ssl, p, n) : recv(s->fd, p, n, 0);
        if (r < 0 && !s->ssl && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends one request frame and reads the answer (without its size prefix)
 * into a malloc'd buffer. -1 on any I/O failure or an oversized answer. */
static int roundtrip(const fsock *fs, const kw *req, uint8_t **out, size_t *out_len)
{
    uint8_t sz[4];
    if (write_all(fs, req->d, req->len) != 0 || read_all(fs, sz, 4) != 0) return -1;
    uint32_t n = ((uint32_t)sz[0] << 24) | ((uint32_t)sz[1] << 16) | ((uint32_t)sz[2] << 8) | sz[3];
    if (n < 4 || n > FETCHER_MAX_FRAME) return -1;
    uint8_t *d = malloc(n);
    if (!d) return -1;
    if (read_all(fs, d, n) != 0) {
        free(d);
        return -1;
    }
    *out = d;
    *out_len = n;
    return 0;
}

/* ------------------------------------------------------------ the thread */

/* Entries ready for a request now (f->mu held): those that must ask
 * OffsetForLeaderEpoch first when any does (*epochs = 1), else those that
 * fetch. Copies into a new array; *next_ms = the earliest retry time of the
 * entries left waiting (0: none). */
static kc_fetch_part *ready_entries(fetcher *f, int64_t now, size_t *n, int *epochs,
                                    int64_t *next_ms)
{
    *n = 0;
    *epochs = 0;
    *next_ms = 0;
    for (size_t i = 0; i < f->n; i++) {
        fentry *e = &f->e[i];
        if (!e->active) continue;
        if (e->retry_at_ms > now) {
            if (!*next_ms || e->retry_at_ms < *next_ms) *next_ms = e->retry_at_ms;
            continue;
        }
        if (e->step == RF_EPOCH) *epochs = 1;
    }
    kc_fetch_part *out = malloc((f->n ? f->n : 1) * sizeof(*out));
    if (!out) return NULL;
    for (size_t i = 0; i < f->n; i++) {
        fentry *e = &f->e[i];
        if (!e->active || e->retry_at_ms > now) continue;
        if (e->step != (*epochs ? RF_EPOCH : RF_FETCH)) continue;
        out[(*n)++] = e->fp;
    }
    return out;
}

static void build_request(fetcher *f, int epochs, const kc_fetch_part *parts, size_t n, kw *w)
{
    int32_t corr = ++f->corr;
    if (!epochs) {
        kc_fetch_req q = {.replica_id = f->b->node_id,
                          .max_wait_ms = f->max_wait_ms,
                          .min_bytes = 1,
                          .max_bytes = f->max_bytes,
                          .isolation_level = 0, /* a replica reads up to the log end */
                          .nparts = n,
                          .parts = parts};
        kafka_write_FetchRequest(w, corr, f->client_id, &q);
        return;
    }
    kc_epoch_part *ep = calloc(n ? n : 1, sizeof(*ep));
    if (!ep) {
        w->err = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ep[i].topic = parts[i].topic;
        ep[i].partition = parts[i].partition;
        ep[i].current_leader_epoch = parts[i].current_leader_epoch;
        ep[i].leader_epoch = parts[i].last_fetched_epoch;
    }
    kafka_write_OffsetForLeaderEpochRequest(w, corr, f->client_id, f->b->node_id, ep, n);
    free(ep);
}

static void answer_done(bjob *j);

/* One request and its answer, f->mu not held. 0 when an answer was posted. */
static int fetcher_exchange(fetcher *f, int epochs, kc_fetch_part *parts, size_t n)
{
    kw w;
    kw_init(&w, FETCHER_MAX_FRAME);
    build_request(f, epochs, parts, n, &w);
    uint8_t *frame = NULL;
    size_t len = 0;
    fsock fs = {f->fd, f->ssl};
    int rc = w.err ? -1 : roundtrip(&fs, &w, &frame, &len);
    kw_free(&w);
    if (rc != 0) return -1;
    fanswer *a = calloc(1, sizeof(*a));
    if (!a) {
        free(frame);
        return -1;
    }
    a->j.done = answer_done;
    a->f = f;
    a->epochs = epochs;
    a->req = parts;
    a->nreq = n;
    a->frame = frame;
    a->len = len;
    pthread_mutex_lock(&f->mu);
    f->inflight = 1;
    pthread_mutex_unlock(&f->mu);
    net_post(f->b, &a->j);
    return 0;
}

/* One SASL request and its answer on a connection being set up. */
static int sasl_roundtrip(const fsock *fs, kw *w, uint8_t **frame, size_t *len)
{
    int rc = w->err ? -1 : roundtrip(fs, w, frame, len);
    if (w->d) explicit_bzero(w->d, w->len); /* PLAIN's token holds the password */
    return rc;
}

/* SaslAuthenticate with token tok; the server's answer bytes copied into
 * out (NUL-terminated), its SessionLifetimeMs into *lifetime_ms. 0, or -1
 * with err set. */
static int sasl_step(fetcher *f, const fsock *fs, const void *tok, size_t toklen, char *out,
                     size_t outlen, int64_t *lifetime_ms, char *err, size_t errlen)
{
    kw w;
    kw_init(&w, 65536);
    kafka_write_SaslAuthenticateRequest(&w, ++f->corr, f->client_id, tok, toklen);
    uint8_t *frame = NULL;
    size_t len = 0;
    int rc = sasl_roundtrip(fs, &w, &frame, &len);
    kw_free(&w);
    if (rc != 0) {
        snprintf(err, errlen, "connection closed during SASL authentication (the broker "
                              "closes it after a refused login)");
        return -1;
    }
    karena a;
    karena_init(&a, 65536);
    kc_sasl_auth_resp r;
    rc = kafka_read_SaslAuthenticateResponse(frame, len, &a, &r, err, errlen);
    if (rc == 0 && r.error) {
        snprintf(err, errlen, "SaslAuthenticate refused (error %d): %s", r.error,
                 r.error_message ? r.error_message : "no message");
        rc = -1;
    } else if (rc == 0 && (r.auth_bytes.len < 0 || (size_t)r.auth_bytes.len >= outlen)) {
        snprintf(err, errlen, "SaslAuthenticate answer too large");
        rc = -1;
    } else if (rc == 0) {
        memcpy(out, r.auth_bytes.p, (size_t)r.auth_bytes.len);
        out[r.auth_bytes.len] = 0;
        *lifetime_ms = r.session_lifetime_ms;
    }
    karena_free(&a);
    free(frame);
    return rc;
}

/* Logs in as this broker's own user (cl_interbroker); 0 or -1 with err. */
static int sasl_login(fetcher *f, const fsock *fs, const cl_interbroker *ib, char *err,
                      size_t errlen)
{
    kw w;
    kw_init(&w, 65536);
    kafka_write_SaslHandshakeRequest(&w, ++f->corr, f->client_id, ib->mech);
    uint8_t *frame = NULL;
    size_t len = 0;
    int rc = sasl_roundtrip(fs, &w, &frame, &len);
    kw_free(&w);
    if (rc != 0) {
        snprintf(err, errlen, "no answer to SaslHandshake (is listener %s a SASL listener there?)",
                 ib->listener);
        return -1;
    }
    karena a;
    karena_init(&a, 65536);
    kc_sasl_handshake_resp h;
    rc = kafka_read_SaslHandshakeResponse(frame, len, &a, &h, err, errlen);
    if (rc == 0 && h.error) {
        char offered[256] = "";
        for (size_t i = 0; i < h.nmechanisms; i++)
            snprintf(offered + strlen(offered), sizeof offered - strlen(offered), "%s%s",
                     i ? "," : "", h.mechanisms[i]);
        snprintf(err, errlen,
                 "SaslHandshake refused (error %d): sasl.mechanism.inter.broker.protocol=%s, the "
                 "broker enables %s",
                 h.error, ib->mech, *offered ? offered : "none");
        rc = -1;
    }
    karena_free(&a);
    free(frame);
    if (rc != 0) return -1;
    char in[2048], out[2048], why[512];
    int64_t life = 0;
    if (!strcmp(ib->mech, "PLAIN")) {
        uint8_t tok[600];
        size_t n = ts_sasl_plain_make(ib->user, ib->password, tok, sizeof tok);
        rc = n ? sasl_step(f, fs, tok, n, in, sizeof in, &life, why, sizeof why) : -1;
        explicit_bzero(tok, sizeof tok);
        if (!n) snprintf(why, sizeof why, "user or password too long");
    } else {
        ts_scram_client sc;
        int mech = ts_scram_mech_parse(ib->mech);
        rc = ts_scram_client_first(&sc, mech, ib->user, out, sizeof out, why, sizeof why) == 0 &&
                     sasl_step(f, fs, out, strlen(out), in, sizeof in, &life, why, sizeof why) == 0 &&
                     ts_scram_client_final(&sc, ib->password, strlen(ib->password), in,
                                           strlen(in), out, sizeof out, why, sizeof why) == 0 &&
                     sasl_step(f, fs, out, strlen(out), in, sizeof in, &life, why, sizeof why) == 0 &&
                     ts_scram_client_verify(&sc, in, strlen(in), why, sizeof why) == 0
                 ? 0
                 : -1;
        explicit_bzero(&sc, sizeof sc);
        explicit_bzero(out, sizeof out);
    }
    /* connections.max.reauth.ms on the leader: it closes a connection whose
     * session ended at its next request, so log in again (on a new
     * connection) once 90% of the lifetime has passed. */
    f->session_end_ms = rc == 0 && life > 0 ? bclock_ms() + life - life / 10 : 0;
    if (rc != 0)
        snprintf(err, errlen,
                 "SASL %s login as user '%s' failed: %s (check %s here and that the user has "
                 "that password in the leader's users file)",
                 ib->mech, ib->user, why, ib->jaas_key);
    return rc;
}

/* Connection failures: logged at the first, then once per
 * FETCHER_FAIL_LOG_MS with the attempts in between (the thread's state). */
static void fetcher_note_failure(fetcher *f, const char *host, int port, const char *why)
{
    int64_t now = bclock_ms();
    f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : FETCHER_BACKOFF_MS;
    if (f->backoff_ms > FETCHER_BACKOFF_MAX_MS) f->backoff_ms = FETCHER_BACKOFF_MAX_MS;
    if (f->fail_logged_ms && now - f->fail_logged_ms < FETCHER_FAIL_LOG_MS) {
        f->fails_unlogged++;
        return;
    }
    const cl_interbroker *ib = cluster_interbroker(f->b);
    blog_warn("fetcher: cannot fetch from broker %d at %s:%d (listener %s, protocol %s): %s; "
              "retrying, backing off up to %lld ms%s",
              f->leader_id, host, port, ib ? ib->listener : "?",
              ib ? bsecurity_name(ib->proto) : "?", why, (long long)FETCHER_BACKOFF_MAX_MS,
              f->fails_unlogged ? " (failed again meanwhile)" : "");
    f->fail_logged_ms = now;
    f->fails_unlogged = 0;
}

/* (Re)connects when there is no socket or the address changed (f->mu not
 * held): TCP, then TLS and SASL as the inter-broker listener needs. 0 when
 * connected. */
static int fetcher_connect(fetcher *f)
{
    pthread_mutex_lock(&f->mu);
    int gen = f->addr_gen, port = f->port;
    char host[256];
    snprintf(host, sizeof host, "%s", f->host);
    int have = f->fd >= 0 && f->conn_gen == gen;
    pthread_mutex_unlock(&f->mu);
    if (have && f->session_end_ms && bclock_ms() >= f->session_end_ms) {
        blog_info("fetcher: SASL session with broker %d ends (its connections.max.reauth.ms): "
                  "logging in again",
                  f->leader_id);
        have = 0;
    }
    if (have) return 0;
    f->session_end_ms = 0;
    const cl_interbroker *ib = cluster_interbroker(f->b);
    char why[1024] = "";
    fsock fs = {-1, NULL};
    if (!host[0]) {
        snprintf(why, sizeof why, "it registered no listener named %s", ib ? ib->listener : "?");
    } else if ((fs.fd = connect_to(host, port, f->socket_timeout_ms)) < 0) {
        snprintf(why, sizeof why, "cannot connect");
    } else if (ib && (ib->proto == BSEC_SSL || ib->proto == BSEC_SASL_SSL) &&
               !(fs.ssl = tls_client_connect(&f->b->cfg, ib->listener, fs.fd, host,
                                             ib->verify_host, why, sizeof why))) {
        close(fs.fd);
        fs.fd = -1;
    } else if (ib && (ib->proto == BSEC_SASL_PLAINTEXT || ib->proto == BSEC_SASL_SSL) &&
               sasl_login(f, &fs, ib, why, sizeof why) != 0) {
        tls_free(fs.ssl);
        fs.ssl = NULL;
        close(fs.fd);
        fs.fd = -1;
    }
    pthread_mutex_lock(&f->mu);
    if (f->fd >= 0) close(f->fd);
    tls_free(f->ssl);
    f->fd = fs.fd;
    f->ssl = fs.ssl;
    f->conn_gen = gen;
    pthread_mutex_unlock(&f->mu);
    if (fs.fd < 0) {
        fetcher_note_failure(f, host, port, why);
        return -1;
    }
    if (f->fail_logged_ms)
        blog_info("fetcher: connected to broker %d at %s:%d again", f->leader_id, host, port);
    f->fail_logged_ms = 0;
    f->fails_unlogged = 0;
    return 0;
}

static void fetcher_drop_conn(fetcher *f)
{
    pthread_mutex_lock(&f->mu);
    if (f->fd >= 0) close(f->fd);
    tls_free(f->ssl);
    f->ssl = NULL;
    f->fd = -1;
    pthread_mutex_unlock(&f->mu);
}

/* Waits on f->cv until `until_ms` (monotonic, as bclock_ms) or a signal. */
static void fetcher_wait(fetcher *f, int64_t until_ms)
{
    int64_t now = bclock_ms();
    int64_t ms = until_ms > now ? until_ms - now : 0;
    if (!until_ms || ms > 1000) ms = 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

static void *fetcher_main(void *arg)
{
    fetcher *f = arg;
    /* OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a leader gone
     * mid-write must give EPIPE here, even before main ignores SIGPIPE (the
     * first view can start fetchers before that). */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        if (f->inflight) {
            fetcher_wait(f, 0);
            continue;
        }
        size_t n;
        int epochs;
        int64_t next_ms;
        kc_fetch_part *parts = ready_entries(f, bclock_ms(), &n, &epochs, &next_ms);
        if (!parts || n == 0) {
            free(parts);
            fetcher_wait(f, next_ms);
            continue;
        }
        pthread_mutex_unlock(&f->mu);
        int rc = fetcher_connect(f), connected = rc == 0;
        if (rc == 0) rc = fetcher_exchange(f, epochs, parts, n);
        if (rc == 0) f->backoff_ms = 0;
        if (rc != 0) {
            free(parts);
            fetcher_drop_conn(f);
        }
        int64_t wait_ms = !connected && f->backoff_ms ? f->backoff_ms : FETCHER_BACKOFF_MS;
        pthread_mutex_lock(&f->mu);
        if (rc != 0 && !f->stop) fetcher_wait(f, bclock_ms() + wait_ms);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Loop: applies one answer, then lets the thread build the next request. */
static void answer_done(bjob *j)
{
    fanswer *a = (fanswer *)j;
    fetcher *f = a->f;
    broker *b = f->b;
    karena arena;
    karena_init(&arena, 4 * a->len + 65536);
    char err[256];
    int ok;
    if (a->epochs) {
        kc_epoch_resp r;
        ok = kafka_read_OffsetForLeaderEpochResponse(a->frame, a->len, &arena, &r, err,
                                                     sizeof err) == 0;
        if (ok) replica_apply_epochs(b, f, a->req, a->nreq, &r);
    } else {
        kc_fetch_resp r;
        ok = kafka_read_FetchResponse(a->frame, a->len, &arena, &r, err, sizeof err) == 0;
        if (ok) replica_apply_fetch(b, f, a->req, a->nreq, &r);
    }
    if (!ok) blog_warn("fetcher: broker %d answered a %s: %s", f->leader_id,
                       a->epochs ? "bad OffsetForLeaderEpoch" : "bad Fetch", err);
    karena_free(&arena);
    pthread_mutex_lock(&f->mu);
    f->inflight = 0;
    if (!ok && f->fd >= 0) shutdown(f->fd, SHUT_RDWR); /* the thread reconnects */
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    free(a->req);
    free(a->frame);
    free(a);
}

/* ------------------------------------------------------------- the loop */

/* The leader's address on the inter-broker listener ("" when it has none). */
static void endpoint_of(broker *b, const cl_broker *cb, const char **host, int *port)
{
    const cl_interbroker *ib = cluster_interbroker(b);
    const cl_endpoint *ep = ib ? cluster_endpoint(cb, ib->listener) : NULL;
    *host = ep ? ep->host : ib ? "" : cb->host;
    *port = ep ? ep->port : ib ? 0 : cb->port;
}

static void fetcher_set_addr(fetcher *f, const cl_broker *cb)
{
    const char *host;
    int port;
    endpoint_of(f->b, cb, &host, &port);
    if (!strcmp(f->host, host) && f->port == port) return;
    snprintf(f->host, sizeof f->host, "%s", host);
    f->port = port;
    f->addr_gen++;
    if (f->fd >= 0) shutdown(f->fd, SHUT_RDWR);
}

static fetcher *fetcher_start(broker *b, int32_t leader_id, const cl_broker *cb)
{
    fetcher *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->b = b;
    f->leader_id = leader_id;
    f->fd = -1;
    f->max_wait_ms = (int32_t)cfg_int(b, "replica.fetch.wait.max.ms", 500);
    f->part_max_bytes = (int32_t)cfg_int(b, "replica.fetch.max.bytes", 1048576);
    f->max_bytes = (int32_t)cfg_int(b, "replica.fetch.response.max.bytes", 10485760);
    f->socket_timeout_ms = (int32_t)cfg_int(b, "replica.socket.timeout.ms", 30000);
    snprintf(f->client_id, sizeof f->client_id, "tierbroker-%d-fetcher-%d", b->node_id,
             leader_id);
    const char *host;
    int port;
    endpoint_of(b, cb, &host, &port);
    snprintf(f->host, sizeof f->host, "%s", host);
    f->port = port;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->th, NULL, fetcher_main, f) != 0) {
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        free(f);
        return NULL;
    }
    f->started = 1;
    f->next = b->replica_fetchers;
    b->replica_fetchers = f;
    blog_info("fetcher for broker %d (%s:%d, listener %s) started", leader_id, f->host, f->port,
              cluster_interbroker(b) ? cluster_interbroker(b)->listener : "?");
    return f;
}

fetcher *fetcher_for(broker *b, int32_t leader_id)
{
    const cl_broker *cb = b->stop ? NULL : cluster_broker(b, leader_id);
    if (!cb) return NULL;
    for (fetcher *f = b->replica_fetchers; f; f = f->next)
        if (f->leader_id == leader_id) {
            pthread_mutex_lock(&f->mu);
            fetcher_set_addr(f, cb);
            pthread_mutex_unlock(&f->mu);
            return f;
        }
    return fetcher_start(b, leader_id, cb);
}

static fentry *entry_of(fetcher *f, const rpart *rp)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->e[i].rp == rp) return &f->e[i];
    return NULL;
}

void fetcher_set(broker *b, fetcher *f, rpart *rp)
{
    tsp_offsets off = {.struct_size = sizeof off, .leader_epoch = -1};
    bpart *p = replica_part(b, rp);
    int have = p && b->pl->offsets(p->h, &off) == TSP_OK;
    pthread_mutex_lock(&f->mu);
    fentry *e = entry_of(f, rp);
    if (!e && f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        fentry *ne = realloc(f->e, cap * sizeof(*ne));
        if (!ne) {
            pthread_mutex_unlock(&f->mu);
            return;
        }
        f->e = ne;
        f->cap = cap;
    }
    if (!e) {
        e = &f->e[f->n++];
        memset(e, 0, sizeof(*e));
        e->rp = rp;
    }
    e->fp.topic = rp->topic;
    e->fp.partition = rp->partition;
    e->fp.current_leader_epoch = rp->epoch;
    e->fp.fetch_offset = rp->fetch_offset;
    e->fp.last_fetched_epoch = have ? off.leader_epoch : -1;
    e->fp.log_start_offset = have ? off.log_start_offset : -1;
    e->fp.partition_max_bytes = f->part_max_bytes;
    e->step = rp->step;
    e->retry_at_ms = rp->retry_at_ms;
    e->active = have && !rp->busy && rp->step != RF_JOB;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void fetcher_remove(broker *b, fetcher *f, rpart *rp)
{
    (void)b;
    pthread_mutex_lock(&f->mu);
    fentry *e = entry_of(f, rp);
    if (e) *e = f->e[--f->n];
    pthread_mutex_unlock(&f->mu);
}

void fetcher_on_brokers(broker *b)
{
    for (fetcher *f = b->replica_fetchers; f; f = f->next) {
        const cl_broker *cb = cluster_broker(b, f->leader_id);
        if (!cb) continue; /* its partitions move to other leaders (replica.c) */
        pthread_mutex_lock(&f->mu);
        fetcher_set_addr(f, cb);
        pthread_mutex_unlock(&f->mu);
    }
}

void fetcher_shutdown_all(broker *b)
{
    for (fetcher *f = b->replica_fetchers; f; f = f->next) {
        pthread_mutex_lock(&f->mu);
        f->stop = 1;
        if (f->fd >= 0) shutdown(f->fd, SHUT_RDWR);
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
    /* The structs stay: an answer may still sit in the loop's done queue
     * (freed with the process). */
    for (fetcher *f = b->replica_fetchers; f; f = f->next) {
        if (f->started) pthread_join(f->th, NULL);
        f->started = 0;
        if (f->fd >= 0) close(f->fd);
        tls_free(f->ssl);
        f->ssl = NULL;
        f->fd = -1;
    }
}

int32_t fetcher_leader(const fetcher *f) { return f->leader_id; }
