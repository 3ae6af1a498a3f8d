/*
 * tierstore-kafka-demo — the main job's demo through the broker: a real
 * Kafka client (librdkafka) produces realistic events into a topic with small
 * segments and a small local bound, waits until the broker's tierstore plugin
 * has offloaded the closed segments to the bucket, then a fresh consumer reads
 * every message back from offset 0 — most of it cold, from the bucket — and
 * verifies each one. Placement comes from `tierctl placement --json`, as an
 * operator would get it.
 *
 *   tierstore-kafka-demo --bootstrap 127.0.0.1:9092 --config server.properties
 *                        --tierctl PATH [--mb N] [--partitions N] [--topic NAME]
 *
 * Touches no tierstore header: Kafka clients and the admin CLI only.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_args.h"
#include "progress.h"
#include "demo_disk.h"
#include "demo_events.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "tierstore-kafka-demo: %s: %s\n", what, why);
    exit(1);
}

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err)))
        die("config", err);
    return c;
}

static void setc(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err))) die(k, err);
}

static void create_topic(const char *bootstrap, const char *topic, int parts)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(bootstrap), err, sizeof(err));
    if (!rk) die("admin client", err);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, 1, err, sizeof(err));
    if (!nt) die("NewTopic", err);
    /* Small segments and a small local bound so most data goes remote. */
    rd_kafka_NewTopic_set_config(nt, "segment.bytes", "8388608");
    rd_kafka_NewTopic_set_config(nt, "local.retention.bytes", "16777216");
    rd_kafka_NewTopic_set_config(nt, "retention.ms", "-1");
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (!ev) die("CreateTopics", "no answer within 15 s");
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    if (cnt == 1 && rd_kafka_topic_result_error(tr[0]) &&
        rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        die("CreateTopics", rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

typedef struct place {
    int rows, remote_only, local_only_closed, objects;
    unsigned long long raw_remote, stored;
} place;

/* Runs tierctl placement --json and sums it up. */
static int placement(const char *tierctl, const char *cfg, const char *topic, place *out)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' -c '%s' placement %s --json 2>/dev/null", tierctl, cfg, topic);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int rc = pclose(f);
    cJSON *arr = cJSON_Parse(buf);
    free(buf);
    if (rc != 0 || !cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const char *loc = cJSON_GetObjectItem(o, "location")->valuestring;
        int active = cJSON_IsTrue(cJSON_GetObjectItem(o, "active"));
        out->rows++;
        if (!strcmp(loc, "remote")) out->remote_only++;
        if (!strcmp(loc, "local") && !active) out->local_only_closed++;
        if (strcmp(loc, "local")) {
            out->objects++;
            out->raw_remote += (unsigned long long)cJSON_GetObjectItem(o, "size_bytes")->valuedouble;
            out->stored += (unsigned long long)cJSON_GetObjectItem(o, "stored_bytes")->valuedouble;
        }
    }
    cJSON_Delete(arr);
    return 0;
}

/* The run's arguments and what it produced and consumed. */
typedef struct kdemo {
    const char *bootstrap, *cfg, *tierctl, *topic, *data_dir;
    int64_t mb;
    int parts;
    unsigned long long bytes, msgs; /* produced */
    int64_t prod_ms;
    unsigned long long got, bad, got_bytes; /* consumed */
    int64_t cons_ms;
    int quiet; /* --quiet: no progress line even on a terminal */
} kdemo;

#define KDEMO_USAGE                                                                             \
    "usage: tierstore-kafka-demo --config server.properties --tierctl PATH "                      \
    "[--bootstrap H:P] [--data-dir DIR] [--mb N] [--partitions N] [--topic T] [--quiet]\n"                  \
    "       tierstore-kafka-demo --help | --version\n\n"                                           \
    "The broker's main job in one run, with a real Kafka client (librdkafka): creates\n"          \
    "a topic with small segments and local retention on a running tierbroker, produces\n"         \
    "N MiB with acks=all, waits until the plugin tiered it, shows the placement with\n"          \
    "tierctl and consumes every record back from offset 0 (cold reads).\n"

/* Returns 0, or 2 (the exit status) after a message on a bad argument. */
static int parse_args(int argc, char **argv, kdemo *d)
{
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"config", required_argument, NULL, 'c'},
        {"tierctl", required_argument, NULL, 't'},
        {"data-dir", required_argument, NULL, 'd'},
        {"topic", required_argument, NULL, 'T'},
        {"mb", required_argument, NULL, 'm'},
        {"partitions", required_argument, NULL, 'p'},
        {"version", no_argument, NULL, 'V'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = "tierstore-kafka-demo";
    int64_t np = 4;
    d->bootstrap = "127.0.0.1:9092";
    d->topic = "events";
    d->mb = 300;
    int opt, bad = 0;
    while (!bad && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': d->bootstrap = optarg; break;
        case 'c': d->cfg = optarg; break;
        case 't': d->tierctl = optarg; break;
        case 'd': d->data_dir = optarg; break;
        case 'T': d->topic = optarg; break;
        case 'm': bad = cli_parse_i64(prog, "--mb", optarg, 1, 1 << 30, &d->mb); break;
        case 'p': bad = cli_parse_i64(prog, "--partitions", optarg, 1, 64, &np); break;
        case 'q': d->quiet = 1; break;
        case 'V': printf("tierstore-kafka-demo (tierstore) %s\n", TS_VERSION); exit(0);
        case 'h': printf(KDEMO_USAGE); exit(0);
        default: bad = 1;
        }
    }
    if (bad || optind < argc) {
        fprintf(stderr, KDEMO_USAGE);
        return 2;
    }
    d->parts = (int)np;
    if (!d->cfg || !d->tierctl) die("arguments", "--config and --tierctl are required");
    return 0;
}

/* Produces --mb of events round-robin over the partitions, idempotent
 * with acks=all, and waits until every one is acknowledged. */
static void produce_all(kdemo *d)
{
    char err[512];
    rd_kafka_conf_t *pc = base_conf(d->bootstrap);
    setc(pc, "acks", "all");
    setc(pc, "enable.idempotence", "true");
    setc(pc, "linger.ms", "20");
    setc(pc, "batch.size", "1000000");
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prod) die("producer", err);
    uint64_t *seq = calloc((size_t)d->parts, sizeof(uint64_t));
    unsigned long long target = (unsigned long long)d->mb << 20;
    char val[8192], key[64];
    int64_t t0 = now_ms(), next_report = 0;
    while (d->bytes < target) {
        for (int p = 0; p < d->parts; p++) {
            size_t vl = demo_event(p, seq[p], val, sizeof(val));
            int kl = snprintf(key, sizeof(key), "%d-%llu", p, (unsigned long long)seq[p]);
            rd_kafka_resp_err_t e;
            while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(d->topic),
                                          RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY(key, (size_t)kl),
                                          RD_KAFKA_V_VALUE(val, vl),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                          RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(prod, 50);
            if (e) die("produce", rd_kafka_err2str(e));
            seq[p]++;
            d->bytes += vl + (size_t)kl;
            d->msgs++;
        }
        rd_kafka_poll(prod, 0);
        if (now_ms() >= next_report) {
            printf("  produced %6.1f MiB (%llu messages)\n", d->bytes / 1048576.0, d->msgs);
            fflush(stdout);
            next_report = now_ms() + 3000;
        }
    }
    if (rd_kafka_flush(prod, 120000)) die("produce", "messages still unacknowledged after 120 s");
    d->prod_ms = now_ms() - t0;
    rd_kafka_destroy(prod);
    free(seq);
    printf("  produced %.1f MiB, %llu messages, all acknowledged (acks=all) in %.1f s\n\n",
           d->bytes / 1048576.0, d->msgs, d->prod_ms / 1000.0);
}

/* Waits (up to 180 s) for the offload: every closed segment beyond local
 * retention remote-only, none closed and local-only. */
static void wait_offload(const kdemo *d)
{
    place pl = {0};
    int64_t deadline = now_ms() + 180000;
    while (now_ms() < deadline) {
        if (placement(d->tierctl, d->cfg, d->topic, &pl) == 0 && pl.local_only_closed == 0 &&
            pl.remote_only > 0)
            break;
        usleep(500000);
    }
    printf("placement (tierctl -c %s placement %s): %d segments, %d remote-only, %d objects, "
           "%d closed segments still waiting for upload\n\n",
           d->cfg, d->topic, pl.rows, pl.remote_only, pl.objects, pl.local_only_closed);
}

/* Consumes everything from offset 0 with a fresh consumer and compares
 * each message with the event it was made from. */
static void consume_verify(kdemo *d)
{
    char err[512], val[8192];
    rd_kafka_conf_t *cc = base_conf(d->bootstrap);
    setc(cc, "group.id", "tierstore-demo-verify");
    setc(cc, "enable.auto.commit", "false");
    setc(cc, "enable.partition.eof", "true");
    setc(cc, "fetch.max.bytes", "8388608");
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (!cons) die("consumer", err);
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(d->parts);
    for (int p = 0; p < d->parts; p++)
        rd_kafka_topic_partition_list_add(tl, d->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(cons, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    uint64_t *next = calloc((size_t)d->parts, sizeof(uint64_t));
    cli_progress prog;
    cli_progress_start(&prog, "consume", "messages", d->msgs, d->bytes, d->quiet);
    int64_t c0 = now_ms(), idle_deadline = now_ms() + 120000;
    while (d->got < d->msgs && now_ms() < idle_deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 1000);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* more may follow on the other partitions */
        } else if (m->err) {
            cli_progress_clear(&prog);
            fprintf(stderr, "  consume error: %s\n", rd_kafka_message_errstr(m));
            d->bad++;
        } else {
            int p = m->partition;
            size_t vl = demo_event(p, next[p], val, sizeof(val));
            if (p < 0 || p >= d->parts || m->len != vl || memcmp(m->payload, val, vl)) d->bad++;
            next[p]++;
            d->got++;
            d->got_bytes += m->len + m->key_len;
            cli_progress_add(&prog, 1, m->len + m->key_len);
            idle_deadline = now_ms() + 120000;
        }
        rd_kafka_message_destroy(m);
    }
    cli_progress_end(&prog);
    d->cons_ms = now_ms() - c0;
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    free(next);
}

/* Prints the summary; returns 1 when every message came back intact. */
static int print_summary(const kdemo *d)
{
    unsigned long long local = 0, cache = 0;
    if (d->data_dir) {
        char cdir[4096];
        snprintf(cdir, sizeof(cdir), "%s/.chunk-cache", d->data_dir);
        local = demo_du(d->data_dir, ".chunk-cache");
        cache = demo_du(cdir, NULL);
    }
    place pl = {0};
    placement(d->tierctl, d->cfg, d->topic, &pl);
    printf("summary\n");
    printf("  bytes produced       %.1f MiB (%llu messages, %.1f MB/s)\n", d->bytes / 1048576.0,
           d->msgs, d->bytes / 1048576.0 / (d->prod_ms / 1000.0 + 1e-9));
    if (d->data_dir)
        printf("  local bytes          %.1f MiB of segments and indexes + %.1f MiB chunk cache "
               "(bound per partition: 16 MiB local retention + 8 MiB active; cache 256 MiB)\n",
               local / 1048576.0, cache / 1048576.0);
    printf("  remote bytes         %.1f MiB stored for %.1f MiB of segments in %d objects\n",
           pl.stored / 1048576.0, pl.raw_remote / 1048576.0, pl.objects);
    printf("  compression ratio    %.2fx\n", pl.stored ? (double)pl.raw_remote / pl.stored : 0.0);
    printf("  consumed back        %llu of %llu messages from offset 0 in %.1f s (%.1f MB/s), "
           "%llu mismatched\n",
           d->got, d->msgs, d->cons_ms / 1000.0,
           d->got_bytes / 1048576.0 / (d->cons_ms / 1000.0 + 1e-9), d->bad);
    int ok = d->got == d->msgs && d->bad == 0;
    printf("  result               %s\n", ok ? "OK: every message read back verified, cold data "
                                               "included" : "FAILED");
    return ok;
}

int main(int argc, char **argv)
{
    kdemo d;
    memset(&d, 0, sizeof(d));
    int rc = parse_args(argc, argv, &d);
    if (rc) return rc;
    printf("Kafka demo: %lld MB of events into topic '%s' (%d partitions, 8 MiB segments, 16 MiB "
           "local retention) through the broker at %s\n\n", (long long)d.mb, d.topic, d.parts,
           d.bootstrap);
    create_topic(d.bootstrap, d.topic, d.parts);
    produce_all(&d);
    wait_offload(&d);
    consume_verify(&d);
    return print_summary(&d) ? 0 : 1;
}
