/*
 * bench_fetch.c — tierbroker's hot Fetch path against sendfile(2) of the
 * same segment files over loopback TCP (issue 13: >= 0.8x). Driven by
 * bench/broker/fetch.sh, which fills a topic and runs both modes in one run:
 *
 *   bench_fetch fetch HOST:PORT TOPIC NPARTS ROUNDS MAX_BYTES PART_MAX
 *     a Kafka Fetch v4 client: all partitions in one request, from offset 0
 *     to the high watermark, ROUNDS times; prints "fetch BYTES SECONDS"
 *     (record bytes received)
 *   bench_fetch sendfile ROUNDS BUF_BYTES FILE...
 *     a loopback server sendfiles every FILE to a client ROUNDS times;
 *     prints "sendfile BYTES SECONDS"
 * Both readers recv at most 1 MiB a call, and both into a buffer the size
 * of one Fetch response (the baseline walks a BUF_BYTES buffer as the Fetch
 * client fills its response buffer), so the readers cost the same and the
 * ratio is the broker's. Timings only: not a test.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECV_CHUNK (1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int recv_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < RECV_CHUNK ? n - got : RECV_CHUNK;
        ssize_t r = recv(fd, p + got, want, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }
static void wr32(uint8_t *p, uint32_t v) { p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v; }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, v >> 32), wr32(p + 4, (uint32_t)v); }

static int connect_to(const char *hostport)
{
    char host[256];
    snprintf(host, sizeof host, "%s", hostport);
    char *c = strrchr(host, ':');
    if (!c) return -1;
    *c = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(c + 1))};
    inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    return fd;
}

static int run_fetch(int argc, char **argv)
{
    if (argc < 8) return 2;
    const char *topic = argv[3];
    int nparts = atoi(argv[4]), rounds = atoi(argv[5]);
    int32_t max_bytes = atoi(argv[6]), part_max = atoi(argv[7]);
    int fd = connect_to(argv[2]);
    if (fd < 0) {
        perror("connect");
        return 1;
    }
    size_t tl = strlen(topic);
    size_t reqlen = 4 + 14 + 17 + 2 + tl + 4 + (size_t)nparts * 16;
    uint8_t *req = calloc(1, reqlen);
    int64_t *off = calloc((size_t)nparts, sizeof(*off)), *hw = calloc((size_t)nparts, sizeof(*hw));
    size_t cap = (size_t)max_bytes + (16u << 20);
    uint8_t *resp = malloc(cap);
    uint64_t bytes = 0;
    double t0 = now_s();
    for (int r = 0; r < rounds; r++) {
        for (int p = 0; p < nparts; p++) off[p] = 0, hw[p] = -1;
        for (int32_t corr = 1;; corr++) {
            int left = 0;
            for (int p = 0; p < nparts; p++) left += hw[p] < 0 || off[p] < hw[p];
            if (!left) break;
            uint8_t *q = req + 4;
            q[0] = 0, q[1] = 1, q[2] = 0, q[3] = 4; /* Fetch v4 */
            wr32(q + 4, (uint32_t)corr);
            q[8] = 0, q[9] = 4, memcpy(q + 10, "bnch", 4);
            q += 14;
            wr32(q, (uint32_t)-1), wr32(q + 4, 100), wr32(q + 8, 1), wr32(q + 12, (uint32_t)max_bytes);
            q[16] = 0;
            q += 17;
            wr32(q, 1);
            q[4] = (uint8_t)(tl >> 8), q[5] = (uint8_t)tl;
            memcpy(q + 6, topic, tl);
            q += 6 + tl;
            wr32(q, (uint32_t)nparts);
            q += 4;
            for (int p = 0; p < nparts; p++, q += 16) {
                wr32(q, (uint32_t)p);
                wr64(q + 4, (uint64_t)off[p]);
                wr32(q + 12, (uint32_t)part_max);
            }
            wr32(req, (uint32_t)(q - req - 4));
            if (send(fd, req, (size_t)(q - req), MSG_NOSIGNAL) != q - req) return 1;
            uint8_t h[4];
            if (recv_full(fd, h, 4)) return 1;
            size_t n = rd32(h);
            if (n > cap || recv_full(fd, resp, n)) return 1;
            const uint8_t *x = resp + 8, *end = resp + n;
            uint32_t nt = rd32(x);
            x += 4;
            for (uint32_t t = 0; t < nt; t++) {
                x += 2 + ((x[0] << 8) | x[1]);
                uint32_t np = rd32(x);
                x += 4;
                for (uint32_t k = 0; k < np; k++) {
                    int p = (int)rd32(x);
                    int16_t err = (int16_t)((x[4] << 8) | x[5]);
                    hw[p] = (int64_t)rd64(x + 6);
                    int32_t nab = (int32_t)rd32(x + 22);
                    x += 26 + (nab > 0 ? (size_t)nab * 16 : 0);
                    int32_t rl = (int32_t)rd32(x);
                    x += 4;
                    if (err) {
                        fprintf(stderr, "partition %d: error %d\n", p, err);
                        return 1;
                    }
                    const uint8_t *b = x, *be = x + (rl > 0 ? rl : 0);
                    while (be - b >= 61) {
                        uint32_t bl = rd32(b + 8);
                        if ((size_t)(be - b) < 12 + (size_t)bl) break;
                        off[p] = (int64_t)rd64(b) + (int32_t)rd32(b + 23) + 1;
                        b += 12 + bl;
                    }
                    bytes += (uint64_t)(b - x);
                    x = be;
                    if (x > end) return 1;
                }
            }
        }
    }
    double dt = now_s() - t0;
    printf("fetch %llu %.6f\n", (unsigned long long)bytes, dt);
    return 0;
}

typedef struct srv {
    int lfd, rounds, nfiles;
    char **files;
} srv;

static void *serve(void *arg)
{
    srv *s = arg;
    int c = accept(s->lfd, NULL, NULL);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (int r = 0; r < s->rounds; r++)
        for (int i = 0; i < s->nfiles; i++) {
            int fd = open(s->files[i], O_RDONLY);
            struct stat st;
            fstat(fd, &st);
            off_t o = 0;
            while (o < st.st_size)
                if (sendfile(c, fd, &o, (size_t)(st.st_size - o)) <= 0) break;
            close(fd);
        }
    close(c);
    return NULL;
}

static int run_sendfile(int argc, char **argv)
{
    if (argc < 5) return 2;
    size_t cap = (size_t)atoll(argv[3]);
    if (cap < RECV_CHUNK) cap = RECV_CHUNK;
    srv s = {.rounds = atoi(argv[2]), .nfiles = argc - 4, .files = argv + 4};
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    if (bind(s.lfd, (struct sockaddr *)&a, sizeof a) || listen(s.lfd, 1) ||
        getsockname(s.lfd, (struct sockaddr *)&a, &al))
        return 1;
    pthread_t th;
    pthread_create(&th, NULL, serve, &s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double t0 = now_s();
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) return 1;
    uint8_t *buf = malloc(cap);
    memset(buf, 0, cap);
    uint64_t bytes = 0;
    size_t at = 0;
    for (;;) {
        if (cap - at < RECV_CHUNK) at = 0;
        ssize_t r = recv(fd, buf + at, RECV_CHUNK, 0);
        if (r <= 0) break;
        bytes += (uint64_t)r;
        at += (size_t)r;
    }
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    printf("sendfile %llu %.6f\n", (unsigned long long)bytes, dt);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 2;
    if (argc > 1 && !strcmp(argv[1], "fetch")) rc = run_fetch(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "sendfile")) rc = run_sendfile(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: bench_fetch fetch HOST:PORT TOPIC NPARTS ROUNDS MAX_BYTES PART_MAX\n"
                        "       bench_fetch sendfile ROUNDS BUF_BYTES FILE...\n");
    return rc;
}
