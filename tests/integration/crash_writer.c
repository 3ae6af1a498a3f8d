/*
 * crash_writer — the process test_crash kills. Appends deterministic
 * batches (gen.h) to partition crash-0, flushing every few batches; after
 * each successful flush it appends (k, base_offset) of the flushed batches
 * to a log file and fdatasyncs it. So the log names only records the engine
 * promised are durable. It continues from the batch after the last one in
 * the partition, so the log holds every k exactly once when all is well.
 *
 *   crash_writer DATA_DIR REMOTE_URL FLUSHED_LOG
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "gen.h"
#include "tierstore.h"

static int64_t batch_k(const uint8_t *b, size_t len)
{
    /* The first record's value starts {"p":P,"k":K,... */
    const char *needle = "\"k\":";
    for (size_t i = 0; i + 4 < len; i++)
        if (!memcmp(b + i, needle, 4)) return strtoll((const char *)b + i + 4, NULL, 10);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: crash_writer DATA_DIR REMOTE_URL FLUSHED_LOG\n");
        return 2;
    }
    char err[1024];
    ts_config *c = ts_config_create();
    ts_config_set(c, "log.dirs", argv[1], NULL, 0);
    ts_config_set(c, "remote.storage.url", argv[2], NULL, 0);
    ts_config_set(c, "log.segment.bytes", "262144", NULL, 0);
    ts_config_set(c, "log.local.retention.bytes", "1048576", NULL, 0);
    ts_config_set(c, "log.retention.ms", "-1", NULL, 0);
    ts_config_set(c, "message.max.bytes", "8388608", NULL, 0);
    ts_config_set(c, "remote.storage.chunk.bytes", "65536", NULL, 0);
    ts_config_set(c, "remote.log.manager.task.interval.ms", "20", NULL, 0);
    /* Two entries per manifest head: most uploads also write a piece, so
     * kills land between a piece and its head too (issue 9). */
    ts_config_set(c, "remote.log.manifest.head.segments", "2", NULL, 0);
    ts_engine *eng;
    if (ts_engine_open(c, &eng, err, sizeof(err))) {
        fprintf(stderr, "crash_writer: %s\n", err);
        return 1;
    }
    ts_partition *p;
    if (ts_partition_open(eng, "crash", 0, 1, &p, err, sizeof(err))) {
        fprintf(stderr, "crash_writer: %s\n", err);
        return 1;
    }
    ts_offsets o;
    ts_partition_offsets(p, &o);
    uint64_t k = 0;
    if (o.log_end_offset > o.log_start_offset) {
        /* Find the last batch: read from the start of the last local segment. */
        int64_t off = o.local_start_offset;
        int64_t last_k = -1;
        for (;;) {
            uint8_t *d;
            size_t len;
            if (ts_partition_read(p, off, 1 << 20, &d, &len, err, sizeof(err))) {
                fprintf(stderr, "crash_writer: %s\n", err);
                return 1;
            }
            if (!len) break;
            size_t pos = 0;
            while (pos < len) {
                ts_batch_hdr h;
                ts_batch_parse_header(d + pos, len - pos, 8 << 20, &h, NULL, 0);
                last_k = batch_k(d + pos, ts_batch_total_size(&h));
                off = ts_batch_last_offset(&h) + 1;
                pos += ts_batch_total_size(&h);
            }
            free(d);
        }
        k = (uint64_t)(last_k + 1);
    }
    int logfd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
    int64_t ts0 = 1700000000000LL;
    int64_t pend[16][2];
    int npend = 0;
    for (;;) {
        size_t len;
        uint8_t *b = gen_batch(0, k, ts0, &len, NULL);
        int64_t first;
        ts_status st;
        while ((st = ts_partition_append(p, b, len, &first, NULL, err, sizeof(err))) == TS_E_BACKPRESSURE)
            ts_sleep_ms(2);
        free(b);
        if (st) {
            fprintf(stderr, "crash_writer: %s\n", err);
            return 1;
        }
        pend[npend][0] = (int64_t)k;
        pend[npend][1] = first;
        npend++;
        k++;
        if (npend == 5) {
            if (ts_partition_flush(p, err, sizeof(err))) {
                fprintf(stderr, "crash_writer: %s\n", err);
                return 1;
            }
            char line[2048];
            size_t n = 0;
            for (int i = 0; i < npend; i++)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%lld %lld\n",
                                      (long long)pend[i][0], (long long)pend[i][1]);
            if (write(logfd, line, n) != (ssize_t)n || fdatasync(logfd)) return 1;
            npend = 0;
        }
    }
}
