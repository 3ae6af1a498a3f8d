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
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static unsigned long long du(const char *dir, const char *exclude)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "du -sb %s%s '%s' 2>/dev/null", exclude ? "--exclude=" : "",
             exclude ? exclude : "", dir);
    FILE *f = popen(cmd, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1) v = 0;
        pclose(f);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *bootstrap = "127.0.0.1:9092", *cfg = NULL, *tierctl = NULL, *topic = "events";
    const char *data_dir = NULL;
    long mb = 300;
    int parts = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bootstrap") && i + 1 < argc) bootstrap = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc) cfg = argv[++i];
        else if (!strcmp(argv[i], "--tierctl") && i + 1 < argc) tierctl = argv[++i];
        else if (!strcmp(argv[i], "--data-dir") && i + 1 < argc) data_dir = argv[++i];
        else if (!strcmp(argv[i], "--topic") && i + 1 < argc) topic = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = atol(argv[++i]);
        else if (!strcmp(argv[i], "--partitions") && i + 1 < argc) parts = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: tierstore-kafka-demo --config server.properties --tierctl PATH "
                            "[--bootstrap H:P] [--data-dir DIR] [--mb N] [--partitions N] "
                            "[--topic T]\n");
            return 2;
        }
    }
    if (!cfg || !tierctl || mb < 1 || parts < 1 || parts > 64) die("arguments", "see --help");
    printf("Kafka demo: %ld MB of events into topic '%s' (%d partitions, 8 MiB segments, 16 MiB "
           "local retention) through the broker at %s\n\n", mb, topic, parts, bootstrap);
    create_topic(bootstrap, topic, parts);

    /* Produce. */
    char err[512];
    rd_kafka_conf_t *pc = base_conf(bootstrap);
    setc(pc, "acks", "all");
    setc(pc, "enable.idempotence", "true");
    setc(pc, "linger.ms", "20");
    setc(pc, "batch.size", "1000000");
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prod) die("producer", err);
    uint64_t *seq = calloc((size_t)parts, sizeof(uint64_t));
    unsigned long long bytes = 0, msgs = 0, target = (unsigned long long)mb << 20;
    char val[8192], key[64];
    int64_t t0 = now_ms(), next_report = 0;
    while (bytes < target) {
        for (int p = 0; p < parts; p++) {
            size_t vl = demo_event(p, seq[p], val, sizeof(val));
            int kl = snprintf(key, sizeof(key), "%d-%llu", p, (unsigned long long)seq[p]);
            rd_kafka_resp_err_t e;
            while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                          RD_KAFKA_V_KEY(key, (size_t)kl), RD_KAFKA_V_VALUE(val, vl),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                          RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(prod, 50);
            if (e) die("produce", rd_kafka_err2str(e));
            seq[p]++;
            bytes += vl + (size_t)kl;
            msgs++;
        }
        rd_kafka_poll(prod, 0);
        if (now_ms() >= next_report) {
            printf("  produced %6.1f MiB (%llu messages)\n", bytes / 1048576.0, msgs);
            fflush(stdout);
            next_report = now_ms() + 3000;
        }
    }
    if (rd_kafka_flush(prod, 120000)) die("produce", "messages still unacknowledged after 120 s");
    int64_t prod_ms = now_ms() - t0;
    rd_kafka_destroy(prod);
    printf("  produced %.1f MiB, %llu messages, all acknowledged (acks=all) in %.1f s\n\n",
           bytes / 1048576.0, msgs, prod_ms / 1000.0);

    /* Wait for the offload: every closed segment beyond local retention
     * remote-only, none closed and local-only. */
    place pl = {0};
    int64_t deadline = now_ms() + 180000;
    while (now_ms() < deadline) {
        if (placement(tierctl, cfg, topic, &pl) == 0 && pl.local_only_closed == 0 &&
            pl.remote_only > 0)
            break;
        usleep(500000);
    }
    printf("placement (tierctl -c %s placement %s): %d segments, %d remote-only, %d objects, "
           "%d closed segments still waiting for upload\n\n",
           cfg, topic, pl.rows, pl.remote_only, pl.objects, pl.local_only_closed);

    /* Consume everything from offset 0 with a fresh consumer and verify. */
    rd_kafka_conf_t *cc = base_conf(bootstrap);
    setc(cc, "group.id", "tierstore-demo-verify");
    setc(cc, "enable.auto.commit", "false");
    setc(cc, "enable.partition.eof", "true");
    setc(cc, "fetch.max.bytes", "8388608");
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (!cons) die("consumer", err);
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(cons, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    uint64_t *next = calloc((size_t)parts, sizeof(uint64_t));
    unsigned long long got = 0, bad = 0, got_bytes = 0;
    int eof = 0;
    int64_t c0 = now_ms(), idle_deadline = now_ms() + 120000;
    while (got < msgs && now_ms() < idle_deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 1000);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof++;
        } else if (m->err) {
            fprintf(stderr, "  consume error: %s\n", rd_kafka_message_errstr(m));
            bad++;
        } else {
            int p = m->partition;
            size_t vl = demo_event(p, next[p], val, sizeof(val));
            if (p < 0 || p >= parts || m->len != vl || memcmp(m->payload, val, vl)) bad++;
            next[p]++;
            got++;
            got_bytes += m->len + m->key_len;
            idle_deadline = now_ms() + 120000;
        }
        rd_kafka_message_destroy(m);
    }
    int64_t cons_ms = now_ms() - c0;
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);

    unsigned long long local = 0, cache = 0;
    if (data_dir) {
        char cdir[4096];
        snprintf(cdir, sizeof(cdir), "%s/.chunk-cache", data_dir);
        local = du(data_dir, ".chunk-cache");
        cache = du(cdir, NULL);
    }
    placement(tierctl, cfg, topic, &pl);
    printf("summary\n");
    printf("  bytes produced       %.1f MiB (%llu messages, %.1f MB/s)\n", bytes / 1048576.0, msgs,
           bytes / 1048576.0 / (prod_ms / 1000.0 + 1e-9));
    if (data_dir)
        printf("  local bytes          %.1f MiB of segments and indexes + %.1f MiB chunk cache "
               "(bound per partition: 16 MiB local retention + 8 MiB active; cache 256 MiB)\n",
               local / 1048576.0, cache / 1048576.0);
    printf("  remote bytes         %.1f MiB stored for %.1f MiB of segments in %d objects\n",
           pl.stored / 1048576.0, pl.raw_remote / 1048576.0, pl.objects);
    printf("  compression ratio    %.2fx\n", pl.stored ? (double)pl.raw_remote / pl.stored : 0.0);
    printf("  consumed back        %llu of %llu messages from offset 0 in %.1f s (%.1f MB/s), "
           "%llu mismatched\n",
           got, msgs, cons_ms / 1000.0, got_bytes / 1048576.0 / (cons_ms / 1000.0 + 1e-9), bad);
    int ok = got == msgs && bad == 0;
    printf("  result               %s\n", ok ? "OK: every message read back verified, cold data "
                                               "included" : "FAILED");
    free(seq);
    free(next);
    return ok ? 0 : 1;
}
