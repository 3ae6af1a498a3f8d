/*
 * net.c — tierbroker's network loop: epoll over the listeners, the client
 * connections and an eventfd through which worker pools hand completed jobs
 * back. Everything here runs on the loop thread except bpool workers
 * (worker_main) and blog(), which any thread may call.
 *
 * Why one loop thread: Kafka clients pipeline requests on one connection
 * and expect answers in order; keeping all broker state on one thread makes
 * that ordering, the group coordinator and long-poll wakeups lock-free. Once
 * serving, the loop calls the plugin only for the page-cache append of a
 * Produce and the in-memory `offsets`; reads (hot and cold pools), acks=-1
 * flushes (io pool), metadata-file writes (meta pool) and every topic
 * lookup, create and delete — directory scans, bucket LISTs, partition
 * opens and recovery — go to the pools. Only startup, before the first
 * accept, opens the topics of .broker/topics on this thread.
 * The 50 ms tick also resumes listeners paused out of descriptors and closes
 * idle connections and unfinished frames (connections.max.idle.ms,
 * request.timeout.ms); blog() limits repeated lines per call site.
 *
 * Memory is bounded the way Kafka bounds it, by not reading: a connection
 * is muted (EPOLLIN off, its requests left in the kernel's socket buffer)
 * while its unsent responses reach queued.max.response.bytes, while a Fetch
 * of it is in flight and the next request is another Fetch, or while a
 * Produce of it is held on backpressure. Frames larger than the 64 KiB base
 * buffer are charged in full to queued.max.request.bytes (shared by all
 * connections) as soon as their size prefix is read, but memory grows only
 * as their bytes arrive; a connection whose frame does not fit waits muted
 * until budget is returned. Muted connections are resumed through a kick
 * list run after each pass, never from inside a reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "common/logline.h"
#include "out.h"
#include "replica.h"

int g_blog_debug;

/* Repeated lines: a client, a full disk or an exhausted descriptor table can
 * make one call site log thousands of times a second (3 million lines in 5 s
 * were seen). Each format string may write BLOG_BURST lines per second; the
 * rest are counted, and the next line of that format let through says how
 * many were left out. Keyed by the format's address (one per call site);
 * DEBUG lines, asked for explicitly, are never held back. */
#define BLOG_SLOTS 128
#define BLOG_BURST 10
static struct {
    const char *fmt;
    int64_t sec;
    unsigned n;
    unsigned long suppressed;
} g_blog_rl[BLOG_SLOTS];
static pthread_mutex_t g_blog_mu = PTHREAD_MUTEX_INITIALIZER;

/* Returns 0 to drop this line, else 1 with *suppressed set to the lines
 * dropped since the last one of this format. */
static int blog_admit(const char *fmt, int64_t sec, unsigned long *suppressed)
{
    size_t h = ((uintptr_t)fmt >> 3) % BLOG_SLOTS;
    int ok = 1;
    *suppressed = 0;
    pthread_mutex_lock(&g_blog_mu);
    if (g_blog_rl[h].fmt != fmt) {
        *suppressed = g_blog_rl[h].fmt == NULL ? 0 : g_blog_rl[h].suppressed;
        g_blog_rl[h].fmt = fmt;
        g_blog_rl[h].sec = sec;
        g_blog_rl[h].n = 0;
        g_blog_rl[h].suppressed = 0;
    } else if (g_blog_rl[h].sec != sec) {
        g_blog_rl[h].sec = sec;
        g_blog_rl[h].n = 0;
    }
    if (g_blog_rl[h].n >= BLOG_BURST) {
        g_blog_rl[h].suppressed++;
        ok = 0;
    } else {
        g_blog_rl[h].n++;
        *suppressed += g_blog_rl[h].suppressed;
        g_blog_rl[h].suppressed = 0;
    }
    pthread_mutex_unlock(&g_blog_mu);
    return ok;
}

static void blog_emit(const char *level, unsigned long suppressed, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Any thread. One write(2) per line keeps lines whole. */
static int g_blog_json; /* log.format=json; set once at startup */

void blog_set_format(const char *format)
{
    g_blog_json = ts_logline_format_parse(format) == TS_LOGLINE_JSON;
}

void blog(const char *level, const char *fmt, ...)
{
    unsigned long suppressed = 0;
    if (strcmp(level, "DEBUG") && !blog_admit(fmt, bclock_ms() / 1000, &suppressed)) return;
    va_list ap;
    va_start(ap, fmt);
    blog_emit(level, suppressed, fmt, ap);
    va_end(ap);
}

void blog_unlimited(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    blog_emit(level, 0, fmt, ap);
    va_end(ap);
}

static void blog_emit(const char *level, unsigned long suppressed, const char *fmt, va_list ap)
{
    char msg[1800], line[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len = ts_logline_render(line, sizeof line, g_blog_json ? TS_LOGLINE_JSON : TS_LOGLINE_TEXT,
                                   level, "broker", msg, suppressed);
    ssize_t w = write(2, line, len);
    (void)w;
}

int64_t bclock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bclock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t bclock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- pools */

struct bpool {
    broker *b;
    char name[32];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bjob *head, *tail;
    int stop;
    int nthreads;
    int key_limit;              /* 0: FIFO; else jobs of one key running at most */
    const void *running[64];    /* key of the job each worker runs (NULL: none or unkeyed); under mu */
    pthread_t th[64];
};

typedef struct bworker {
    bpool *p;
    int i;
} bworker;

/* Jobs of key running now. Caller holds p->mu. */
static int key_running(const bpool *p, const void *key)
{
    int n = 0;
    for (int i = 0; i < 64; i++) n += p->running[i] == key;
    return n;
}

/* Unlinks and returns the first job a worker may start: the head, or with
 * a key limit the first whose key is under it (so a key at its limit never
 * holds up the jobs queued behind it); any job when stopping (the queue is
 * run to its end). NULL when none may start. Caller holds p->mu. */
static bjob *jobq_take(bpool *p)
{
    bjob *prev = NULL;
    for (bjob *j = p->head; j; prev = j, j = j->next) {
        if (p->key_limit && j->key && !p->stop && key_running(p, j->key) >= p->key_limit)
            continue;
        if (prev) prev->next = j->next;
        else p->head = j->next;
        if (p->tail == j) p->tail = prev;
        return j;
    }
    return NULL;
}

/* Appends j to the queue (*head, *tail); the caller holds its mutex. */
static void jobq_push(bjob **head, bjob **tail, bjob *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* Queues j for its `done` on the loop and wakes the loop. Any thread. */
static void done_queue(broker *b, bjob *j)
{
    pthread_mutex_lock(&b->done_mu);
    jobq_push(&b->done_head, &b->done_tail, j);
    pthread_mutex_unlock(&b->done_mu);
    uint64_t one = 1;
    ssize_t w = write(b->evfd, &one, sizeof one);
    (void)w;
}

/* Worker thread: runs jobs, queues them for `done` on the loop. */
static void *worker_main(void *arg)
{
    bworker *w = arg;
    bpool *p = w->p;
    int me = w->i;
    free(w);
    broker *b = p->b;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bjob *j;
        while (!(j = jobq_take(p)) && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (!j) { /* stopping, and the queue has been run to its end */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->running[me] = j->key;
        pthread_mutex_unlock(&p->mu);

        const void *key = j->key;
        j->run(j);
        done_queue(b, j); /* j may be gone from here on */
        pthread_mutex_lock(&p->mu);
        p->running[me] = NULL;
        /* A job passed over for its key may start now. */
        if (p->key_limit && key && p->head) pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

bpool *bpool_create(broker *b, const char *name, int nthreads)
{
    bpool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->b = b;
    snprintf(p->name, sizeof p->name, "%s", name);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    for (int i = 0; i < nthreads; i++) {
        bworker *w = malloc(sizeof(*w));
        if (!w) break;
        w->p = p;
        w->i = i;
        if (pthread_create(&p->th[i], NULL, worker_main, w) != 0) {
            free(w);
            break;
        }
        p->nthreads++;
    }
    return p;
}

void bpool_set_key_limit(bpool *p, int max_running_per_key)
{
    pthread_mutex_lock(&p->mu);
    p->key_limit = max_running_per_key > 0 ? max_running_per_key : 0;
    pthread_mutex_unlock(&p->mu);
}

/* Loop thread. */
void bpool_submit_keyed(bpool *p, bjob *j, const void *key)
{
    p->b->jobs_inflight++;
    pthread_mutex_lock(&p->mu);
    j->key = key;
    jobq_push(&p->head, &p->tail, j);
    /* A broadcast: the worker a signal would wake may be one that must pass
     * over this job's key. */
    if (p->key_limit) pthread_cond_broadcast(&p->cv);
    else pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Loop thread. */
void bpool_submit(bpool *p, bjob *j)
{
    p->b->jobs_inflight++;
    pthread_mutex_lock(&p->mu);
    j->key = NULL;
    jobq_push(&p->head, &p->tail, j);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void bpool_destroy(bpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* Loop thread: runs `done` of every finished job. */
void net_drain(broker *b)
{
    uint64_t v;
    ssize_t r = read(b->evfd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&b->done_mu);
    bjob *j = b->done_head;
    b->done_head = b->done_tail = NULL;
    pthread_mutex_unlock(&b->done_mu);
    while (j) {
        bjob *n = j->next;
        if (j->run) b->jobs_inflight--; /* net_post's jobs were never counted */
        j->done(j);
        j = n;
    }
    if (b->doomed && b->jobs_inflight == 0) topic_reap_doomed(b);
}

void net_post(broker *b, bjob *j) { done_queue(b, j); }

/* ---------------------------------------------------------- connections */

/* Input buffer every connection may hold without charging the request
 * budget: small requests (ApiVersions, Metadata, heartbeats, most produce
 * batches) never wait for it. */
#define CONN_IN_BASE 65536

struct conn {
    int fd;
    uint64_t id;
    int refs;      /* the loop's own + one per outstanding reply */
    int closed;
    int want_out;  /* responses wait for the socket to drain */
    uint32_t ev;   /* events registered with epoll */
    char peer[NI_MAXHOST + NI_MAXSERV + 2];
    uint8_t *in;
    size_t in_len, in_cap;
    size_t charged;  /* bytes of in_cap charged to queued.max.request.bytes */
    slot *head, *tail;
    bout_cursor cur; /* how much of head is written (out.h) */
    int inflight;    /* slots not yet written */
    size_t out_bytes;  /* bytes of ready slots not yet written */
    int fetches;       /* Fetch requests whose response is not ready */
    int held;          /* conn_hold count */
    int budget_wait;   /* on b->budget_wait_*: its next frame did not fit */
    int fetch_blocked; /* its next request is a Fetch while one is in flight */
    int kicked;        /* on b->kick_*: resume reading/dispatching soon */
    conn *next_wait, *next_kick;
    conn *prev, *next;       /* b->conns: the idle and frame timers walk it */
    int64_t last_active_ms;  /* last byte read or written */
    int64_t frame_since_ms;  /* first byte of an unfinished frame; 0 = none */
    const blistener *l;      /* the listener it came in on */
    void *ssl;               /* TLS listeners: the session (tls.c); else NULL */
    int tls_ready;           /* handshake finished */
    int tls_read_wants_out;  /* a read (the handshake) waits for the socket to drain */
    int64_t accepted_ms;     /* ssl.handshake.timeout.ms runs from here */
    char principal[256];     /* TLS client certificate's mapped subject; "" = none */
    bauth auth;              /* SASL state (sasl.c) */
    int closing;             /* conn_close_after_reply: close once written */
};

bauth *conn_auth(conn *c) { return &c->auth; }

const char *conn_principal(const conn *c)
{
    if (c->auth.authenticated) return c->auth.principal;
    return c->principal[0] ? c->principal : "ANONYMOUS";
}

const blistener *conn_listener(const conn *c) { return c->l; }

const blistener *reply_listener(const broker *b, const reply *r)
{
    return r->c && r->c->l ? r->c->l : &b->listeners[0];
}

int conn_closed(const conn *c) { return c->closed; }
const char *conn_peer(const conn *c) { return c->peer; }
void conn_ref(conn *c) { c->refs++; }

void net_charge(broker *b, size_t n) { b->request_bytes_charged += (int64_t)n; }

static void budget_kick_waiters(broker *b);

void net_uncharge(broker *b, size_t n)
{
    b->request_bytes_charged -= (int64_t)n;
    budget_kick_waiters(b);
}

static void slot_free(slot *s)
{
    if (s->parts) bout_parts_close(s->parts, s->nparts);
    free(s->parts);
    free(s->data);
    free(s);
}

static void conn_free(conn *c)
{
    slot *s = c->head;
    while (s) {
        slot *n = s->next;
        slot_free(s);
        s = n;
    }
    bout_cursor_reset(&c->cur);
    free(c->in);
    sasl_conn_free(&c->auth);
    free(c);
}

/* noinline: callers that hold their own reference across conn_close()
 * (the event loop does) are safe, but GCC's -Wuse-after-free cannot see the
 * count and flags the inlined free at -O2. */
__attribute__((noinline)) void conn_unref(broker *b, conn *c)
{
    if (--c->refs == 0) conn_free(c);
}

static void budget_unwait(broker *b, conn *c)
{
    if (!c->budget_wait) return;
    conn **pp = &b->budget_wait_head;
    conn *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->next_wait;
    }
    if (*pp) *pp = c->next_wait;
    if (b->budget_wait_tail == c) b->budget_wait_tail = prev;
    c->next_wait = NULL;
    c->budget_wait = 0;
    conn_unref(b, c);
}

/* Queues c to be resumed (read and dispatched) after the current event:
 * resuming from inside a reply would recurse into dispatch. */
static void conn_kick(broker *b, conn *c)
{
    if (c->closed || c->kicked) return;
    c->kicked = 1;
    conn_ref(c);
    c->next_kick = NULL;
    if (b->kick_tail)
        b->kick_tail->next_kick = c;
    else
        b->kick_head = c;
    b->kick_tail = c;
}

/* Every waiter tries again, in the order they started waiting. (Not a
 * strict queue: a waiter muted for another reason must not block the
 * others behind it.) */
static void budget_kick_waiters(broker *b)
{
    for (conn *c = b->budget_wait_head; c; c = c->next_wait) conn_kick(b, c);
}

static void conn_set_charge(broker *b, conn *c, size_t charge)
{
    if (charge == c->charged) return;
    if (charge > c->charged) {
        net_charge(b, charge - c->charged);
        c->charged = charge;
    } else {
        size_t back = c->charged - charge;
        c->charged = charge;
        net_uncharge(b, back);
    }
}

void conn_close(broker *b, conn *c, const char *why)
{
    if (c->closed) return;
    c->closed = 1;
    b->metrics.conns_open--;
    if (why) blog_info("closing connection %s: %s", c->peer, why);
    if (c->prev)
        c->prev->next = c->next;
    else if (b->conns == c)
        b->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) tls_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    /* The buffer may still be under a handler's feet; it goes in conn_free. */
    conn_set_charge(b, c, 0);
    budget_unwait(b, c);
    conn_unref(b, c);
}

/* Whether the next request of c may be dispatched (and c read): Kafka's
 * mute. Requests are answered in order, so a client that sends without
 * reading, or a held Produce, stops further work on that connection only.
 * A second Fetch waits for the first one's response (clients send one at a
 * time), so a connection holds at most one Fetch response being read plus
 * max_queued_response_bytes of unsent responses. */
static int conn_may_dispatch(const broker *b, const conn *c)
{
    return !c->closed && !c->closing && !c->held && c->out_bytes < b->max_queued_response_bytes;
}

/* Registers the events c waits for. EPOLLRDHUP stays on while c is muted
 * so that a peer closing its end is noticed: a held Produce must not be
 * appended after its client gave up (it retries on a new connection). */
static void conn_update_events(broker *b, conn *c)
{
    if (c->closed) return;
    uint32_t ev = EPOLLRDHUP | (c->want_out || c->tls_read_wants_out ? EPOLLOUT : 0);
    if (conn_may_dispatch(b, c) && !c->budget_wait && !c->fetch_blocked) ev |= EPOLLIN;
    if (ev == c->ev) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->ev = ev;
}

/* After anything that may reopen c's gate: resume it if it is muted. */
static void conn_maybe_resume(broker *b, conn *c)
{
    if (!c->closed && !(c->ev & EPOLLIN) && conn_may_dispatch(b, c)) conn_kick(b, c);
}

void conn_hold(broker *b, conn *c)
{
    c->held++;
    conn_update_events(b, c);
}

void conn_release(broker *b, conn *c)
{
    if (c->held > 0) c->held--;
    conn_maybe_resume(b, c);
}

/* send(2), or SSL_write on a TLS connection, with send's result: -1 with
 * errno EAGAIN when the socket must drain first (a TLS write that needs to
 * read waits for EPOLLIN, which every connection with output has unless
 * muted; conn_readable then flushes), EPROTO with *err set on a TLS error. */
static ssize_t conn_send(conn *c, const void *buf, size_t n, char *err, size_t errlen)
{
    if (!c->ssl) return send(c->fd, buf, n, MSG_NOSIGNAL);
    int want = 0;
    ssize_t r = tls_write(c->ssl, buf, n, &want, err, errlen);
    if (r == TLS_AGAIN) errno = EAGAIN;
    else if (r <= 0) errno = EPROTO, r = -1;
    else if (r > 0) return r;
    return -1;
}

typedef struct send_ctx {
    conn *c;
    char err[512];
} send_ctx;

static ssize_t conn_send_cb(void *ctx, const void *buf, size_t n)
{
    send_ctx *x = ctx;
    return conn_send(x->c, buf, n, x->err, sizeof x->err);
}

/* Writes ready slots in order until the socket would block. A slot of
 * parts (a Fetch with file ranges) goes out through out.c: sendfile on
 * plaintext, pread + TLS write otherwise. */
static void conn_flush(broker *b, conn *c)
{
    while (!c->closed && c->head && c->head->ready) {
        slot *s = c->head;
        bout_part whole = {.fd = -1, .off = 0, .len = s->data ? s->len : 0};
        const bout_part *parts = s->parts ? s->parts : &whole;
        size_t nparts = s->parts ? s->nparts : 1;
        send_ctx x = {.c = c, .err = ""};
        char err[512] = "";
        size_t sent = 0;
        bout_result r = bout_write(s->data, parts, nparts, &c->cur, c->ssl ? -1 : c->fd,
                                   conn_send_cb, &x, &sent, err, sizeof err);
        if (sent) {
            c->out_bytes -= sent;
            c->last_active_ms = bclock_ms();
        }
        if (r == BOUT_AGAIN) {
            c->want_out = 1;
            conn_update_events(b, c);
            return;
        }
        if (r == BOUT_SHORT) {
            blog_error("%s: %s: closing the connection rather than send other bytes", c->peer, err);
            conn_close(b, c, NULL);
            return;
        }
        if (r == BOUT_ERROR) {
            conn_close(b, c, x.err[0] ? x.err : err);
            return;
        }
        c->head = s->next;
        if (!c->head) c->tail = NULL;
        bout_cursor_reset(&c->cur);
        slot_free(s);
        c->inflight--;
    }
    if (c->closed) return;
    if (c->closing && !c->head) {
        conn_close(b, c, NULL);
        return;
    }
    c->want_out = 0;
    conn_update_events(b, c);
    conn_maybe_resume(b, c);
}

void conn_close_after_reply(broker *b, conn *c)
{
    if (c->closed) return;
    c->closing = 1;
    conn_update_events(b, c);
    if (!c->head) conn_close(b, c, NULL);
}

static void slot_fill(conn *c, slot *s, uint8_t *data, size_t len)
{
    s->data = data;
    s->len = len;
    s->ready = 1;
    c->out_bytes += len;
    if (s->is_fetch) {
        s->is_fetch = 0;
        c->fetches--;
    }
}

void reply_begin(const reply *r, kw *w)
{
    kw_init(w, (size_t)INT32_MAX);
    kw_i32(w, 0);
    kafka_write_response_header(w, &r->hdr);
}

/* Request latency, read to answered; once per reply (its conn is cleared). */
static void reply_observe(broker *b, const reply *r)
{
    double s = (double)(bclock_us() - r->t0_us) / 1e6;
    bmetrics_observe(&b->metrics.latency[bmetrics_api_slot(r->hdr.api_key)], s);
}

void reply_end(broker *b, reply *r, kw *w)
{
    conn *c = r->c;
    if (!c) {
        kw_free(w);
        return;
    }
    reply_observe(b, r);
    if (w->err) {
        kw_free(w);
        conn_close(b, c, "response too large to encode");
    } else if (!c->closed) {
        kw_put_i32_at(w, 0, (int32_t)(w->len - 4));
        slot_fill(c, r->s, w->d, w->len);
        w->d = NULL;
        conn_flush(b, c);
    } else {
        kw_free(w);
    }
    r->c = NULL;
    conn_unref(b, c);
}

void reply_end_parts(broker *b, reply *r, kw *w, const size_t *at, const bout_part *franges,
                     size_t n)
{
    conn *c = r->c;
    bout_part *parts = NULL;
    uint64_t total = w->len;
    for (size_t i = 0; i < n; i++) total += franges[i].len;
    if (!c || c->closed || w->err || total - 4 > (uint64_t)INT32_MAX ||
        !(parts = calloc(2 * n + 1, sizeof(*parts)))) {
        bout_parts_close((bout_part *)franges, n);
        if (c && !c->closed && !w->err) {
            /* No memory for the part list, or a frame too large. */
            kw_free(w);
            w->err = 1;
        }
        reply_end(b, r, w);
        return;
    }
    size_t np = 0, from = 0;
    for (size_t i = 0; i < n; i++) {
        if (at[i] > from) parts[np++] = (bout_part){.fd = -1, .off = from, .len = at[i] - from};
        parts[np++] = franges[i];
        from = at[i];
    }
    if (w->len > from) parts[np++] = (bout_part){.fd = -1, .off = from, .len = w->len - from};
    reply_observe(b, r);
    kw_put_i32_at(w, 0, (int32_t)(total - 4));
    slot *s = r->s;
    s->parts = parts;
    s->nparts = np;
    slot_fill(c, s, w->d, (size_t)total);
    w->d = NULL;
    conn_flush(b, c);
    r->c = NULL;
    conn_unref(b, c);
}

void reply_drop(broker *b, reply *r)
{
    conn *c = r->c;
    if (!c) return;
    reply_observe(b, r);
    if (r->s) {
        /* An empty ready slot: nothing is written for it. */
        slot_fill(c, r->s, NULL, 0);
        if (!c->closed) conn_flush(b, c);
    }
    r->c = NULL;
    conn_unref(b, c);
}

/* Answers a version we do not serve. ApiVersions gets its v0 response with
 * UNSUPPORTED_VERSION (what every client expects); other APIs cannot be
 * encoded in a version we do not know, so the connection is closed. */
static void reply_unsupported(broker *b, reply *r)
{
    if (r->hdr.api_key == KAFKA_API_ApiVersions) {
        kw w;
        r->hdr.flexible = 0;
        reply_begin(r, &w);
        kafka_write_ApiVersionsResponse(&w, 0, KAFKA_UNSUPPORTED_VERSION, b->cluster_mode);
        reply_end(b, r, &w);
        return;
    }
    blog_warn("%s: unsupported %s (key %d) v%d, correlation id %d: closing", conn_peer(r->c),
              kafka_api_name(r->hdr.api_key), r->hdr.api_key, r->hdr.api_version,
              r->hdr.correlation_id);
    conn *c = r->c;
    reply_drop(b, r);
    conn_close(b, c, NULL);
}

/* A parsed request owns its frame and arena until its handler returns;
 * handlers copy what they keep. */
static void dispatch(broker *b, conn *c, const uint8_t *frame, size_t len)
{
    karena arena;
    karena_init(&arena, 4 * len + 65536);
    kafka_request q;
    char err[256];
    kafka_parse_result pr = kafka_parse_request(frame, len, &arena, &q, err, sizeof err);
    if (pr == KAFKA_PARSE_MALFORMED) {
        blog_warn("%s: %s: closing connection", c->peer, err);
        karena_free(&arena);
        conn_close(b, c, NULL);
        return;
    }
    slot *s = calloc(1, sizeof(*s));
    if (!s) {
        karena_free(&arena);
        conn_close(b, c, "out of memory");
        return;
    }
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    c->inflight++;
    if (q.hdr.api_key == KAFKA_API_Fetch) {
        s->is_fetch = 1;
        c->fetches++;
    }
    conn_ref(c);
    b->metrics.requests[bmetrics_api_slot(q.hdr.api_key)]++;
    reply r = {.c = c, .s = s, .hdr = q.hdr, .t0_us = bclock_us()};
    r.hdr.client_id = NULL;
    blog_debug("%s: %s v%d corr %d", c->peer, kafka_api_name(q.hdr.api_key), q.hdr.api_version,
               q.hdr.correlation_id);
    if (pr == KAFKA_PARSE_UNSUPPORTED) {
        reply_unsupported(b, &r);
        karena_free(&arena);
        return;
    }
    const char *why = NULL;
    if (!sasl_request_allowed(b, c, q.hdr.api_key, &why)) {
        blog_warn("%s: %s %s: closing", c->peer, kafka_api_name(q.hdr.api_key), why);
        reply_drop(b, &r);
        conn_close(b, c, NULL);
        karena_free(&arena);
        return;
    }
    switch (q.hdr.api_key) {
    case KAFKA_API_ApiVersions: handle_ApiVersions(b, &r, &q); break;
    case KAFKA_API_Metadata: handle_Metadata(b, &r, &q); break;
    case KAFKA_API_Produce: handle_Produce(b, &r, &q); break;
    case KAFKA_API_Fetch: handle_Fetch(b, &r, &q); break;
    case KAFKA_API_ListOffsets: handle_ListOffsets(b, &r, &q); break;
    case KAFKA_API_CreateTopics: handle_CreateTopics(b, &r, &q); break;
    case KAFKA_API_DeleteTopics: handle_DeleteTopics(b, &r, &q); break;
    case KAFKA_API_InitProducerId: handle_InitProducerId(b, &r, &q); break;
    case KAFKA_API_OffsetForLeaderEpoch: handle_OffsetForLeaderEpoch(b, &r, &q); break;
    case KAFKA_API_FindCoordinator: handle_FindCoordinator(b, &r, &q); break;
    case KAFKA_API_JoinGroup: handle_JoinGroup(b, &r, &q); break;
    case KAFKA_API_SyncGroup: handle_SyncGroup(b, &r, &q); break;
    case KAFKA_API_Heartbeat: handle_Heartbeat(b, &r, &q); break;
    case KAFKA_API_LeaveGroup: handle_LeaveGroup(b, &r, &q); break;
    case KAFKA_API_OffsetCommit: handle_OffsetCommit(b, &r, &q); break;
    case KAFKA_API_OffsetFetch: handle_OffsetFetch(b, &r, &q); break;
    case KAFKA_API_ListGroups: handle_ListGroups(b, &r, &q); break;
    case KAFKA_API_DescribeGroups: handle_DescribeGroups(b, &r, &q); break;
    case KAFKA_API_DeleteGroups: handle_DeleteGroups(b, &r, &q); break;
    case KAFKA_API_OffsetDelete: handle_OffsetDelete(b, &r, &q); break;
    case KAFKA_API_DescribeCluster: handle_DescribeCluster(b, &r, &q); break;
    case KAFKA_API_DescribeLogDirs: handle_DescribeLogDirs(b, &r, &q); break;
    case KAFKA_API_DescribeConfigs: handle_DescribeConfigs(b, &r, &q); break;
    case KAFKA_API_AlterConfigs: handle_AlterConfigs(b, &r, &q); break;
    case KAFKA_API_IncrementalAlterConfigs: handle_IncrementalAlterConfigs(b, &r, &q); break;
    case KAFKA_API_CreatePartitions: handle_CreatePartitions(b, &r, &q); break;
    case KAFKA_API_DeleteRecords: handle_DeleteRecords(b, &r, &q); break;
    case KAFKA_API_SaslHandshake: handle_SaslHandshake(b, &r, &q); break;
    case KAFKA_API_SaslAuthenticate: handle_SaslAuthenticate(b, &r, &q); break;
    case KAFKA_API_DescribeUserScramCredentials:
        handle_DescribeUserScramCredentials(b, &r, &q);
        break;
    case KAFKA_API_AlterUserScramCredentials: handle_AlterUserScramCredentials(b, &r, &q); break;
    case KAFKA_API_CreateAcls: handle_CreateAcls(b, &r, &q); break;
    case KAFKA_API_DescribeAcls: handle_DescribeAcls(b, &r, &q); break;
    case KAFKA_API_DeleteAcls: handle_DeleteAcls(b, &r, &q); break;
    default: reply_unsupported(b, &r); break;
    }
    karena_free(&arena);
}

static int32_t frame_size_at(const uint8_t *p)
{
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
                     p[3]);
}

/* Dispatches the complete frames in c's input buffer while its gate is
 * open, then moves the rest to the front and gives back what a big frame
 * borrowed from the request budget. */
static void conn_dispatch_buffered(broker *b, conn *c)
{
    size_t off = 0;
    c->fetch_blocked = 0;
    while (!c->closed && c->in_len - off >= 4 && conn_may_dispatch(b, c)) {
        const uint8_t *p = c->in + off;
        int32_t size = frame_size_at(p);
        if (size < 8 || (size_t)size > b->max_request_bytes) {
            blog_warn("%s: request size %d outside [8, socket.request.max.bytes]: closing",
                      c->peer, size);
            conn_close(b, c, NULL);
            return;
        }
        if (c->in_len - off < 4 + (size_t)size) break;
        int16_t api = (int16_t)((p[4] << 8) | p[5]);
        if (api == KAFKA_API_Fetch && c->fetches > 0) { /* one Fetch at a time */
            c->fetch_blocked = 1;
            break;
        }
        dispatch(b, c, p + 4, (size_t)size);
        off += 4 + (size_t)size;
    }
    if (c->closed) return;
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    /* Bytes left are the start of a frame: request.timeout.ms runs from its
     * first byte (a new frame when one was just consumed). */
    if (!c->in_len)
        c->frame_since_ms = 0;
    else if (off || !c->frame_since_ms)
        c->frame_since_ms = c->last_active_ms;
    if (c->in_cap > CONN_IN_BASE && c->in_len <= CONN_IN_BASE) {
        uint8_t *n = realloc(c->in, CONN_IN_BASE);
        if (n) {
            c->in = n;
            c->in_cap = CONN_IN_BASE;
            conn_set_charge(b, c, 0);
        }
    }
}

/* Makes room to receive into c's buffer. A frame bigger than the base
 * buffer is charged to queued.max.request.bytes in full when its size
 * prefix is read (so the budget bounds what may arrive), but memory grows
 * only as its bytes arrive. Returns 0 when c must wait for budget (it is
 * then on the wait list) or was closed. */
static int conn_make_room(broker *b, conn *c)
{
    size_t target = CONN_IN_BASE;
    if (c->in_len >= 4) {
        int32_t size = frame_size_at(c->in);
        if (size < 8 || (size_t)size > b->max_request_bytes) {
            blog_warn("%s: request size %d outside [8, socket.request.max.bytes]: closing",
                      c->peer, size);
            conn_close(b, c, NULL);
            return 0;
        }
        if (4 + (size_t)size > target) target = 4 + (size_t)size;
    }
    size_t charge = target - CONN_IN_BASE;
    if (charge > c->charged) {
        int64_t more = (int64_t)(charge - c->charged);
        int fits = b->queued_max_request_bytes < 0 ||
                   b->request_bytes_charged + more <= b->queued_max_request_bytes ||
                   b->request_bytes_charged == 0;
        if (!fits) {
            if (!c->budget_wait) {
                c->budget_wait = 1;
                conn_ref(c);
                c->next_wait = NULL;
                if (b->budget_wait_tail)
                    b->budget_wait_tail->next_wait = c;
                else
                    b->budget_wait_head = c;
                b->budget_wait_tail = c;
                blog_debug("%s: a %zu-byte request waits for queued.max.request.bytes", c->peer,
                           target);
            }
            return 0;
        }
        budget_unwait(b, c);
        conn_set_charge(b, c, charge);
    }
    if (c->in_cap < target && c->in_cap - c->in_len < CONN_IN_BASE) {
        size_t cap = c->in_cap ? c->in_cap * 2 : CONN_IN_BASE;
        if (cap > target) cap = target;
        uint8_t *n = realloc(c->in, cap);
        if (!n) {
            conn_close(b, c, "out of memory");
            return 0;
        }
        c->in = n;
        c->in_cap = cap;
    }
    return c->in_cap > c->in_len;
}

/* Once a TLS handshake finished: the client certificate's principal. */
static void conn_tls_established(broker *b, conn *c)
{
    c->tls_ready = 1;
    const char *rules = bconfig_get(&b->cfg, "ssl.principal.mapping.rules");
    if (tls_peer_principal(c->ssl, rules, c->principal, sizeof c->principal))
        blog_info("%s: TLS client certificate, principal User:%s", c->peer, c->principal);
    else
        blog_debug("%s: TLS established without a client certificate", c->peer);
}

/* recv(2), or SSL_read on a TLS connection (the handshake runs inside it),
 * with recv's result; EPROTO with *err set on a TLS failure. */
static ssize_t conn_recv(broker *b, conn *c, void *buf, size_t n, char *err, size_t errlen)
{
    if (!c->ssl) return recv(c->fd, buf, n, 0);
    int want = 0;
    ssize_t r = tls_read(c->ssl, buf, n, &want, err, errlen);
    c->tls_read_wants_out = r == TLS_AGAIN && want == TLS_WANT_WRITE;
    if (!c->tls_ready && tls_handshake_done(c->ssl)) conn_tls_established(b, c);
    if (r >= 0) return r;
    errno = r == TLS_AGAIN ? EAGAIN : EPROTO;
    return -1;
}

/* Reads what is available and dispatches every complete frame, as long as
 * the connection's gate is open; otherwise leaves the rest in the socket. */
static void conn_readable(broker *b, conn *c)
{
    conn_ref(c);
    for (;;) {
        conn_dispatch_buffered(b, c);
        if (c->closed || !conn_may_dispatch(b, c) || c->fetch_blocked) break;
        if (!conn_make_room(b, c)) break;
        char terr[512] = "";
        ssize_t n = conn_recv(b, c, c->in + c->in_len, c->in_cap - c->in_len, terr, sizeof terr);
        if (n == 0) {
            conn_close(b, c, NULL);
            break;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            if (errno == EPROTO) blog_warn("%s: %s: closing", c->peer, terr);
            conn_close(b, c, errno == EPROTO ? NULL : strerror(errno));
            break;
        }
        c->in_len += (size_t)n;
        c->last_active_ms = bclock_ms();
    }
    conn_update_events(b, c);
    conn_unref(b, c);
}

/* Resumes connections kicked during this pass, in order. */
static void conn_run_kicks(broker *b)
{
    while (b->kick_head) {
        conn *c = b->kick_head;
        b->kick_head = c->next_kick;
        if (!b->kick_head) b->kick_tail = NULL;
        c->kicked = 0;
        if (!c->closed) conn_readable(b, c);
        conn_unref(b, c);
    }
}

/* How long a listener is left alone after accept ran out of descriptors or
 * memory: the pending connection stays in the kernel's backlog, and polling
 * the listener again at once would only fail again (a busy loop). */
#define ACCEPT_BACKOFF_MS 100

static void listener_pause(broker *b, blistener *l, int err)
{
    blog_warn("accept on %s:%d: %s: not accepting for %d ms (raise the open files limit, "
              "ulimit -n, or lower the number of clients)",
              l->host, l->port, strerror(err), ACCEPT_BACKOFF_MS);
    epoll_ctl(b->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    l->paused_until_ms = bclock_ms() + ACCEPT_BACKOFF_MS;
}

/* Loop thread: listens again on paused listeners whose backoff is over. */
static void listeners_resume(broker *b, int64_t now)
{
    for (int k = 0; k < b->nlisteners; k++) {
        blistener *l = &b->listeners[k];
        if (!l->paused_until_ms || now < l->paused_until_ms) continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
        if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0 || errno == EEXIST)
            l->paused_until_ms = 0;
        else
            l->paused_until_ms = now + ACCEPT_BACKOFF_MS;
    }
}

/* Loop thread: closes connections silent for connections.max.idle.ms and
 * those whose unfinished request frame is older than request.timeout.ms.
 * A connection waiting for its own answers (inflight) is neither: the wait
 * is the broker's, not the client's. */
static void conns_expire(broker *b, int64_t now)
{
    conn *c = b->conns;
    while (c) {
        conn *next = c->next;
        if (!c->closed && c->ssl && !c->tls_ready &&
            now - c->accepted_ms >= b->handshake_timeout_ms) {
            blog_warn("%s: TLS handshake not finished within ssl.handshake.timeout.ms: closing",
                      c->peer);
            conn_close(b, c, NULL);
        } else if (!c->closed && c->inflight == 0) {
            if (c->frame_since_ms && now - c->frame_since_ms >= b->request_timeout_ms)
                conn_close(b, c, "request not received completely within request.timeout.ms");
            else if (now - c->last_active_ms >= b->idle_ms)
                conn_close(b, c, "idle for connections.max.idle.ms");
        }
        c = next;
    }
}

static void accept_all(broker *b, blistener *l)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listener_pause(b, l, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                blog_warn("accept on %s:%d: %s", l->host, l->port, strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->refs = 1;
        c->id = ++b->next_conn_id;
        char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->peer, sizeof c->peer, "%s:%s", host, serv);
        c->l = l;
        if (l->tls && !(c->ssl = tls_accept(l->tls, fd))) {
            blog_warn("%s: cannot start a TLS session: closing", c->peer);
            close(fd);
            free(c);
            continue;
        }
        c->ev = EPOLLIN | EPOLLRDHUP;
        struct epoll_event ev = {.events = c->ev, .data.ptr = c};
        if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            if (c->ssl) tls_free(c->ssl);
            close(fd);
            free(c);
            continue;
        }
        c->last_active_ms = c->accepted_ms = bclock_ms();
        b->metrics.conns_accepted++;
        b->metrics.conns_open++;
        c->next = b->conns;
        if (b->conns) b->conns->prev = c;
        b->conns = c;
        blog_debug("accepted %s", c->peer);
    }
}

/* Tags in epoll data: listeners and the eventfd are told apart from
 * connections by pointer identity. */
static char g_evfd_tag;

int net_listen(broker *b, const char *host, int port, char *err, size_t errlen)
{
    if (b->nlisteners >= 4) {
        snprintf(err, errlen, "at most 4 listeners");
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host[0] ? host : NULL, ps, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listeners: cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 512) != 0) {
        snprintf(err, errlen, "listeners: cannot listen on %s:%d: %s (is another broker running?)",
                 host, port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    blistener *l = &b->listeners[b->nlisteners++];
    l->fd = fd;
    snprintf(l->host, sizeof l->host, "%s", host);
    l->port = port;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

int net_init(broker *b)
{
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->epfd < 0 || b->evfd < 0) return -1;
    pthread_mutex_init(&b->done_mu, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g_evfd_tag};
    return epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->evfd, &ev);
}

/* Interval at which Produce requests held on backpressure try again: the
 * plugin does not signal freed room, so it is polled; an append attempt
 * that is refused costs a lock and a comparison. */
#define HELD_RETRY_MS 10

/* The loop: until b->stop. The 50 ms tick drives long-poll deadlines,
 * group session timeouts, listener backoff and connection timeouts; held
 * Produce requests retry every HELD_RETRY_MS. */
void net_run(broker *b)
{
    struct epoll_event evs[128];
    int64_t last_tick = 0, last_held = 0;
    while (!b->stop) {
        int n = epoll_wait(b->epfd, evs, 128, b->held ? HELD_RETRY_MS : 50);
        if (n < 0 && errno != EINTR) {
            blog_error("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &g_evfd_tag) {
                net_drain(b);
                continue;
            }
            int is_listener = 0;
            for (int k = 0; k < b->nlisteners; k++)
                if (tag == &b->listeners[k]) {
                    accept_all(b, &b->listeners[k]);
                    is_listener = 1;
                }
            if (is_listener) continue;
            conn *c = tag;
            conn_ref(c);
            uint32_t e = evs[i].events;
            if (e & (EPOLLERR | EPOLLHUP)) {
                /* Read what is left first: a client may send then close. */
                conn_readable(b, c);
                conn_close(b, c, NULL);
            } else {
                if (e & EPOLLOUT) conn_flush(b, c);
                /* A TLS read (the handshake) that waited for the socket to
                 * drain; a TLS write that waited for input. */
                if ((e & EPOLLOUT) && c->tls_read_wants_out && !c->closed) conn_readable(b, c);
                if ((e & EPOLLIN) && c->ssl && c->want_out && !c->closed) conn_flush(b, c);
                if (e & EPOLLIN) conn_readable(b, c);
                /* Muted and the peer closed its end: what it still sent
                 * will not be answered (a held Produce is dropped, not
                 * appended behind the client's back). */
                if ((e & EPOLLRDHUP) && !c->closed && !(c->ev & EPOLLIN))
                    conn_close(b, c, NULL);
            }
            conn_unref(b, c);
        }
        conn_run_kicks(b);
        int64_t now = bclock_ms();
        if (b->held && now - last_held >= HELD_RETRY_MS) {
            last_held = now;
            produce_retry_held(b);
            conn_run_kicks(b);
        }
        if (b->appends_total != b->parked_seen_appends) fetch_wake(b);
        if (now - last_tick >= 50) {
            last_tick = now;
            fetch_wake(b);
            group_tick(b);
            cluster_tick(b);
            if (b->cluster) replica_tick(b);
            listeners_resume(b, now);
            conns_expire(b, now);
            for (int k = 0; k < b->nlisteners; k++) tls_maybe_reload(b->listeners[k].tls, now);
            sasl_tick(b, now);
        }
        conn_run_kicks(b);
    }
}

void net_shutdown(broker *b)
{
    for (int k = 0; k < b->nlisteners; k++) {
        close(b->listeners[k].fd);
        tls_destroy(b->listeners[k].tls);
        b->listeners[k].tls = NULL;
    }
    b->nlisteners = 0;
}
