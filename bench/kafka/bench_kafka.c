/*
 * bench_kafka — a Kafka load generator on librdkafka, with its baseline
 * beside it in the same run, so every figure is a ratio to what this machine
 * does without a broker in the way.
 *
 *   bench_kafka --bootstrap H:P [--msgs N] [--size BYTES] [--pings N] [--topic-prefix P]
 *               [--tls-bootstrap H:P --ca CA.pem]
 *
 * Measures, each next to a baseline measured in the same process just before:
 *   produce   N messages of SIZE bytes, batching on (linger.ms=5, 1 MiB batches),
 *             acks=1 and acks=-1: MB/s and msgs/s; baseline: the same bytes through
 *             a loopback TCP connection (one writer thread, one reader);
 *   consume   the acks=1 topic from offset 0 with a fresh consumer: MB/s, same
 *             baseline;
 *   latency   one message at a time, acks=1 and acks=-1, wait for its delivery
 *             report before the next: p50/p99 in microseconds; baseline: a
 *             SIZE-byte request and a 16-byte answer bounced over loopback TCP
 *             (the round trip any broker needs at least).
 *   tls       with --tls-bootstrap (the same broker's SSL listener): produce acks=1
 *             and consume over TLS, each next to the same figure over plaintext
 *             measured just before.
 * Prints one line per figure and its ratio (broker / baseline for throughput,
 * baseline / broker for latency: higher is better in both). Never a test.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_args.h"

typedef struct opts {
    const char *bootstrap, *prefix;
    const char *tls_bootstrap, *ca; /* --tls-bootstrap, --ca */
    int tls;                        /* this copy talks TLS to tls_bootstrap */
    int64_t msgs, size, pings;
} opts;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_kafka: %s: %s\n", what, why);
    exit(1);
}

/* ------------------------------------------------------------ baselines */
/* A connected loopback TCP pair: fds[0] the client end, fds[1] the server's. */
static void tcp_pair(int fds[2])
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &al))
        die("loopback", "cannot listen");
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof a)) die("loopback", "connect");
    fds[1] = accept(ls, NULL, NULL);
    close(ls);
    int one = 1;
    setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

typedef struct sink {
    int fd;
    int64_t want;
} sink;

static void *sink_main(void *arg)
{
    sink *s = arg;
    static char buf[1 << 16];
    for (int64_t got = 0; got < s->want;) {
        ssize_t n = read(s->fd, buf, sizeof buf);
        if (n <= 0) break;
        got += n;
    }
    return NULL;
}

/* MB/s of `bytes` written through loopback TCP and read on the other end. */
static double baseline_copy_mbps(int64_t bytes)
{
    int fds[2];
    tcp_pair(fds);
    sink s = {fds[1], bytes};
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    static char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    int64_t t0 = now_us();
    for (int64_t sent = 0; sent < bytes;) {
        size_t n = (size_t)(bytes - sent < (int64_t)sizeof buf ? bytes - sent : (int64_t)sizeof buf);
        ssize_t w = write(fds[0], buf, n);
        if (w <= 0) die("loopback", "write");
        sent += w;
    }
    pthread_join(t, NULL);
    int64_t us = now_us() - t0;
    close(fds[0]);
    close(fds[1]);
    return (double)bytes / (double)(us > 0 ? us : 1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void percentiles(int64_t *v, int64_t n, int64_t *p50, int64_t *p99)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    *p50 = v[n / 2];
    *p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
}

static void read_full(int fd, char *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) die("loopback", "read");
        got += (size_t)r;
    }
}

typedef struct echo {
    int fd;
    int64_t size, pings;
} echo;

static void *echo_main(void *arg)
{
    echo *e = arg;
    char *buf = malloc((size_t)e->size);
    for (int64_t i = 0; i < e->pings; i++) {
        read_full(e->fd, buf, (size_t)e->size);
        if (write(e->fd, buf, 16) != 16) break;
    }
    free(buf);
    return NULL;
}

/* Round trips of a size-byte request and a 16-byte answer over loopback. */
static void baseline_rtt(int64_t size, int64_t pings, int64_t *p50, int64_t *p99)
{
    int fds[2];
    tcp_pair(fds);
    echo e = {fds[1], size, pings};
    pthread_t t;
    pthread_create(&t, NULL, echo_main, &e);
    char *buf = calloc(1, (size_t)size);
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)pings);
    for (int64_t i = 0; i < pings; i++) {
        int64_t t0 = now_us();
        if (write(fds[0], buf, (size_t)size) != (ssize_t)size) die("loopback", "write");
        read_full(fds[0], buf, 16);
        lat[i] = now_us() - t0;
    }
    pthread_join(t, NULL);
    percentiles(lat, pings, p50, p99);
    free(lat);
    free(buf);
    close(fds[0]);
    close(fds[1]);
}

/* --------------------------------------------------------------- kafka */
static rd_kafka_conf_t *conf(const opts *o)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", o->tls ? o->tls_bootstrap : o->bootstrap, err,
                          sizeof err))
        die("bootstrap.servers", err);
    if (o->tls && (rd_kafka_conf_set(c, "security.protocol", "SSL", err, sizeof err) ||
                   rd_kafka_conf_set(c, "ssl.ca.location", o->ca, err, sizeof err)))
        die("security.protocol=SSL", err);
    return c;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err)) die(k, err);
}

typedef struct dr_state {
    int64_t delivered, failed;
    char first_error[256];
} dr_state;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    dr_state *s = rd_kafka_opaque(rk);
    (void)opaque;
    if (m->err) {
        if (!s->failed++) snprintf(s->first_error, sizeof s->first_error, "%s",
                                   rd_kafka_err2str(m->err));
    } else {
        s->delivered++;
    }
}

static rd_kafka_t *producer(const opts *o, const char *acks, int batching, dr_state *s)
{
    rd_kafka_conf_t *c = conf(o);
    set(c, "acks", acks);
    set(c, "linger.ms", batching ? "5" : "0");
    set(c, "batch.size", batching ? "1048576" : "16384");
    set(c, "enable.idempotence", "false");
    set(c, "queue.buffering.max.kbytes", "1048576");
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, s);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) die("producer", err);
    return rk;
}

static void produce_one(rd_kafka_t *rk, const char *topic, char *payload, int64_t size)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_VALUE(payload, (size_t)size), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 10);
    }
}

/* MB/s of msgs messages of size bytes, batching on. */
static double produce_mbps(const opts *o, const char *topic, const char *acks)
{
    dr_state s = {0};
    rd_kafka_t *rk = producer(o, acks, 1, &s);
    char *payload = malloc((size_t)o->size);
    for (int64_t i = 0; i < o->size; i++) payload[i] = (char)('a' + i % 26);
    /* The first message creates the topic and warms the connection. */
    produce_one(rk, topic, payload, o->size);
    rd_kafka_flush(rk, 30000);
    int64_t t0 = now_us();
    for (int64_t i = 0; i < o->msgs; i++) {
        produce_one(rk, topic, payload, o->size);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 120000);
    int64_t us = now_us() - t0;
    if (s.failed || s.delivered != o->msgs + 1)
        die("produce", s.failed ? s.first_error : "not every message was delivered");
    free(payload);
    rd_kafka_destroy(rk);
    return (double)(o->msgs * o->size) / (double)us;
}

/* MB/s reading msgs messages of the topic from offset 0. */
static double consume_mbps(const opts *o, const char *topic)
{
    rd_kafka_conf_t *c = conf(o);
    set(c, "group.id", "bench-kafka");
    set(c, "enable.auto.commit", "false");
    set(c, "fetch.max.bytes", "52428800");
    set(c, "max.partition.fetch.bytes", "10485760");
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk) die("consumer", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    int64_t got = 0, bytes = 0, t0 = 0, deadline = now_us() + 120000000;
    while (got < o->msgs + 1 && now_us() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        if (!m->err) {
            if (!got++) t0 = now_us(); /* from the first message: connection set up */
            else bytes += (int64_t)m->len;
        }
        rd_kafka_message_destroy(m);
    }
    int64_t us = now_us() - t0;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (got < o->msgs + 1) die("consume", "not every message came back within 120 s");
    return (double)bytes / (double)us;
}

/* One message at a time, each waited for: delivery latency percentiles. */
static void produce_latency(const opts *o, const char *topic, const char *acks, int64_t *p50,
                            int64_t *p99)
{
    dr_state s = {0};
    rd_kafka_t *rk = producer(o, acks, 0, &s);
    char *payload = calloc(1, (size_t)o->size);
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)o->pings);
    produce_one(rk, topic, payload, o->size);
    rd_kafka_flush(rk, 30000);
    for (int64_t i = 0; i < o->pings; i++) {
        int64_t before = s.delivered, t0 = now_us();
        produce_one(rk, topic, payload, o->size);
        while (s.delivered == before && !s.failed) rd_kafka_poll(rk, 1);
        lat[i] = now_us() - t0;
    }
    if (s.failed) die("latency", s.first_error);
    percentiles(lat, o->pings, p50, p99);
    free(lat);
    free(payload);
    rd_kafka_destroy(rk);
}

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"bootstrap", required_argument, NULL, 'b'}, {"msgs", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},      {"pings", required_argument, NULL, 'p'},
        {"topic-prefix", required_argument, NULL, 't'},
        {"tls-bootstrap", required_argument, NULL, 'T'}, {"ca", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    *o = (opts){.prefix = "bench", .msgs = 200000, .size = 1024, .pings = 2000};
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 'n': bad = cli_parse_i64("bench_kafka", "--msgs", optarg, 1, 100000000, &o->msgs); break;
        case 's': bad = cli_parse_i64("bench_kafka", "--size", optarg, 16, 1 << 20, &o->size); break;
        case 'p': bad = cli_parse_i64("bench_kafka", "--pings", optarg, 10, 1000000, &o->pings); break;
        case 't': o->prefix = optarg; break;
        case 'T': o->tls_bootstrap = optarg; break;
        case 'C': o->ca = optarg; break;
        default: bad = 1;
        }
    }
    if (bad || !o->bootstrap || optind < argc || (!o->tls_bootstrap != !o->ca)) {
        fprintf(stderr, "usage: bench_kafka --bootstrap H:P [--msgs N] [--size BYTES] "
                        "[--pings N] [--topic-prefix P] [--tls-bootstrap H:P --ca CA.pem]\n");
        exit(2);
    }
}

/* TLS next to plaintext, each pair measured back to back on the same broker. */
static void tls_figures(const opts *o)
{
    opts t = *o;
    t.tls = 1;
    char plain[256], tls[256];
    snprintf(plain, sizeof plain, "%s-plain-vs-tls", o->prefix);
    snprintf(tls, sizeof tls, "%s-tls", o->prefix);
    double pp = produce_mbps(o, plain, "1");
    double tp = produce_mbps(&t, tls, "1");
    printf("produce acks=1 TLS %8.1f MB/s %9.0f msg/s   plaintext     %8.1f MB/s   ratio %.3f\n",
           tp, tp * 1e6 / (double)o->size, pp, tp / pp);
    double pc = consume_mbps(o, plain);
    double tc = consume_mbps(&t, tls);
    printf("consume TLS        %8.1f MB/s %9.0f msg/s   plaintext     %8.1f MB/s   ratio %.3f\n",
           tc, tc * 1e6 / (double)o->size, pc, tc / pc);
}

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    char t1[256], tall[256], tlat1[256], tlatall[256];
    snprintf(t1, sizeof t1, "%s-acks1", o.prefix);
    snprintf(tall, sizeof tall, "%s-acksall", o.prefix);
    snprintf(tlat1, sizeof tlat1, "%s-lat1", o.prefix);
    snprintf(tlatall, sizeof tlatall, "%s-latall", o.prefix);
    int64_t bytes = o.msgs * o.size;
    printf("# %lld messages of %lld bytes (%.1f MB), batching on; %lld single-message pings\n",
           (long long)o.msgs, (long long)o.size, (double)bytes / 1e6, (long long)o.pings);

    double base = baseline_copy_mbps(bytes);
    double p1 = produce_mbps(&o, t1, "1");
    printf("produce acks=1     %8.1f MB/s %9.0f msg/s   loopback copy %8.1f MB/s   ratio %.3f\n",
           p1, p1 * 1e6 / (double)o.size, base, p1 / base);
    base = baseline_copy_mbps(bytes);
    double pall = produce_mbps(&o, tall, "-1");
    printf("produce acks=-1    %8.1f MB/s %9.0f msg/s   loopback copy %8.1f MB/s   ratio %.3f\n",
           pall, pall * 1e6 / (double)o.size, base, pall / base);
    base = baseline_copy_mbps(bytes);
    double cons = consume_mbps(&o, t1);
    printf("consume            %8.1f MB/s %9.0f msg/s   loopback copy %8.1f MB/s   ratio %.3f\n",
           cons, cons * 1e6 / (double)o.size, base, cons / base);

    int64_t b50, b99, l50, l99;
    baseline_rtt(o.size, o.pings, &b50, &b99);
    produce_latency(&o, tlat1, "1", &l50, &l99);
    printf("latency acks=1     p50 %6lld us p99 %6lld us   loopback rtt p50 %4lld us p99 %4lld us"
           "   ratio p50 %.3f p99 %.3f\n",
           (long long)l50, (long long)l99, (long long)b50, (long long)b99,
           (double)b50 / (double)l50, (double)b99 / (double)l99);
    baseline_rtt(o.size, o.pings, &b50, &b99);
    produce_latency(&o, tlatall, "-1", &l50, &l99);
    printf("latency acks=-1    p50 %6lld us p99 %6lld us   loopback rtt p50 %4lld us p99 %4lld us"
           "   ratio p50 %.3f p99 %.3f\n",
           (long long)l50, (long long)l99, (long long)b50, (long long)b99,
           (double)b50 / (double)l50, (double)b99 / (double)l99);
    if (o.tls_bootstrap) tls_figures(&o);
    return 0;
}
