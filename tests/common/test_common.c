/* test_common.c — unit tests of common/: CRC-32C, batches, config table,
 * buffers, pool, retry, atomic file writes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/logline.h"
#include "common/batch.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/config_table.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/pool.h"
#include "common/retry.h"
#include "common/strlist.h"
#include "tt.h"

TT_TEST(crc32c_known_vectors)
{
    TT_ASSERT_EQ_INT(ts_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0};
    TT_ASSERT_EQ_INT(ts_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    uint8_t ones[32];
    memset(ones, 0xff, sizeof(ones));
    TT_ASSERT_EQ_INT(ts_crc32c(0, ones, 32), 0x62A8AB43u);
    /* Hardware and software paths agree on unaligned, odd lengths; and the
     * CRC continues across calls. */
    uint8_t buf[1031];
    for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t off = 0; off < 9; off++) {
        uint32_t a = ts_crc32c(0, buf + off, sizeof(buf) - off);
        TT_ASSERT_EQ_INT(a, ts_crc32c_sw(0, buf + off, sizeof(buf) - off));
        uint32_t b = ts_crc32c(ts_crc32c(0, buf + off, 100), buf + off + 100, sizeof(buf) - off - 100);
        TT_ASSERT_EQ_INT(a, b);
    }
    /* Long inputs take the interleaved path (three chains joined): every
     * length around its block boundaries, and a long continued one. */
    enum { BIG = 3 * 8192 * 2 + 3 * 256 * 3 + 77 };
    uint8_t *big = malloc(BIG);
    TT_ASSERT(big != NULL);
    for (size_t i = 0; i < BIG; i++) big[i] = (uint8_t)(i * 2654435761u >> 13);
    size_t lens[] = {767, 768, 769, 775, 776, 1536, 1543, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1,
                     3 * 8192 + 768 + 5, BIG - 3};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        for (size_t off = 0; off < 3; off++)
            TT_ASSERT_MSG(ts_crc32c(0x1234u, big + off, lens[i]) ==
                              ts_crc32c_sw(0x1234u, big + off, lens[i]),
                          "length %zu at %zu", lens[i], off);
    TT_ASSERT_EQ_INT(ts_crc32c(ts_crc32c(0, big, 5000), big + 5000, BIG - 5000),
                     ts_crc32c_sw(0, big, BIG));
    free(big);
}

/* combine(crc(A), crc(B), |B|) == crc(A B) for every split, empty pieces
 * included, and folds left over many pieces as the chunk cache does. */
TT_TEST(crc32c_combine_equals_concatenation)
{
    uint8_t buf[3000];
    for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(i * 2654435761u >> 11);
    uint32_t whole = ts_crc32c(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut += (cut < 40 ? 1 : 97)) {
        uint32_t a = ts_crc32c(0, buf, cut), b = ts_crc32c(0, buf + cut, sizeof(buf) - cut);
        TT_ASSERT_MSG(ts_crc32c_combine(a, b, sizeof(buf) - cut) == whole, "cut at %zu", cut);
    }
    uint32_t acc = 0;
    for (size_t pos = 0, n = 1; pos < sizeof(buf); pos += n, n = n * 3 % 211 + 1) {
        size_t len = pos + n > sizeof(buf) ? sizeof(buf) - pos : n;
        acc = ts_crc32c_combine(acc, ts_crc32c(0, buf + pos, len), len);
    }
    TT_ASSERT_EQ_INT(acc, whole);
    /* A flipped bit anywhere changes the combined value. */
    buf[1234] ^= 0x10;
    TT_ASSERT(ts_crc32c_combine(ts_crc32c(0, buf, 1000), ts_crc32c(0, buf + 1000, 2000), 2000) !=
              whole);
}

TT_TEST(batch_build_validate_and_reject)
{
    const char *vals[] = {"hello", "world", "!"};
    size_t lens[] = {5, 5, 1};
    uint8_t *b;
    size_t n;
    TT_OK(ts_batch_build((const void *const *)vals, lens, 3, 1700000000000LL, &b, &n));
    ts_batch_hdr h;
    char err[256];
    TT_OKE(ts_batch_validate(b, n, 1 << 20, &h, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(h.records_count, 3);
    TT_ASSERT_EQ_INT(h.last_offset_delta, 2);
    TT_ASSERT_EQ_INT(h.max_timestamp, 1700000000002LL);
    TT_ASSERT_EQ_INT(ts_batch_total_size(&h), n);
    /* baseOffset is outside the CRC: rewriting it keeps the batch valid. */
    ts_batch_set_base_offset(b, 12345);
    TT_OK(ts_batch_validate(b, n, 1 << 20, &h, err, sizeof(err)));
    TT_ASSERT_EQ_INT(h.base_offset, 12345);
    /* A flipped byte under the CRC is rejected, naming the CRC. */
    b[n - 3] ^= 1;
    TT_ASSERT_EQ_INT(ts_batch_validate(b, n, 1 << 20, &h, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(err, "CRC") != NULL);
    b[n - 3] ^= 1;
    /* Truncated data, bad length, bad magic, too large. */
    TT_ASSERT_EQ_INT(ts_batch_validate(b, n - 1, 1 << 20, &h, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT_EQ_INT(ts_batch_validate(b, 30, 1 << 20, &h, err, sizeof(err)), TS_E_CORRUPT);
    uint8_t save = b[11];
    b[11] = 3; /* batchLength below the minimum */
    TT_ASSERT_EQ_INT(ts_batch_validate(b, n, 1 << 20, &h, err, sizeof(err)), TS_E_CORRUPT);
    b[11] = save;
    b[16] = 1;
    TT_ASSERT_EQ_INT(ts_batch_validate(b, n, 1 << 20, &h, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(err, "magic") != NULL);
    b[16] = 2;
    TT_ASSERT_EQ_INT(ts_batch_validate(b, n, 64, &h, err, sizeof(err)), TS_E_MSG_TOO_LARGE);
    /* Regression (review #1): a batch may not claim more offsets than it
     * has records (one small batch could otherwise span 2^31 offsets). */
    ts_wr32(b + 23, 0x7fffffff);
    ts_wr32(b + 17, ts_crc32c(0, b + 21, n - 21));
    TT_ASSERT_EQ_INT(ts_batch_validate(b, n, 1 << 20, &h, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(err, "lastOffsetDelta") != NULL);
    free(b);
}

TT_TEST(config_validation_messages)
{
    ts_config *c = ts_config_create();
    char err[256];
    TT_ASSERT_EQ_INT(ts_config_set(c, "log.segment.bytes", "abc", err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, "log.segment.bytes") && strstr(err, "abc") && strstr(err, "integer"));
    TT_ASSERT_EQ_INT(ts_config_set(c, "log.segment.bytes", "10", err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT_EQ_INT(ts_config_set(c, "no.such.key", "1", err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, "no.such.key") != NULL);
    TT_ASSERT_EQ_INT(ts_config_set(c, "remote.storage.enable", "yes", err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT_EQ_INT(ts_config_set(c, "remote.storage.url", "http://x", err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT_EQ_INT(ts_config_set(c, "s3.path.style.access", "maybe", err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, "auto|true|false") != NULL);
    TT_OK(ts_config_set(c, "log.segment.bytes", "16777216", err, sizeof(err)));
    TT_ASSERT_EQ_INT(ts_config_get_int(c, "log.segment.bytes"), 16777216);
    TT_ASSERT_EQ_INT(ts_config_get_int(c, "log.retention.bytes"), -1); /* default */
    TT_ASSERT(ts_config_get(c, "nope") == NULL);
    ts_config_destroy(c);
    ts_config_destroy(NULL);
}

TT_TEST(config_file_parsing)
{
    char dir[256], path[300], err[512];
    tt_tmpdir(dir, sizeof(dir), "cfg");
    snprintf(path, sizeof(path), "%s/a.properties", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "# comment\n! also comment\n\nlog.dirs = /tmp/x\nlog.segment.bytes: 2048\n"
               "listeners=PLAINTEXT://127.0.0.1:9092\n");
    fclose(f);
    ts_config *c = ts_config_create();
    TT_ASSERT_EQ_INT(ts_config_load_file(c, path, 0, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, ":6:") && strstr(err, "listeners"));
    ts_config_destroy(c);
    c = ts_config_create();
    TT_OKE(ts_config_load_file(c, path, 1, err, sizeof(err)), err);
    TT_ASSERT_STR(ts_config_get(c, "log.dirs"), "/tmp/x");
    TT_ASSERT_EQ_INT(ts_config_get_int(c, "log.segment.bytes"), 2048);
    TT_ASSERT_STR(ts_config_get(c, "listeners"), "PLAINTEXT://127.0.0.1:9092");
    ts_config_destroy(c);
    f = fopen(path, "w");
    fprintf(f, "log.segment.bytes=-5\n");
    fclose(f);
    c = ts_config_create();
    TT_ASSERT_EQ_INT(ts_config_load_file(c, path, 1, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, ":1") && strstr(err, "-5"));
    ts_config_destroy(c);
    ts_fs_rmtree(dir, NULL, 0);
}

TT_TEST(buf_hard_cap)
{
    ts_buf b;
    ts_buf_init(&b, 10);
    TT_OK(ts_buf_append(&b, "12345", 5));
    TT_OK(ts_buf_append(&b, "67890", 5));
    TT_ASSERT_EQ_INT(ts_buf_append(&b, "x", 1), TS_E_NOMEM);
    TT_ASSERT_EQ_INT(b.len, 10);
    ts_buf_free(&b);
}

static atomic_int g_count;
static void count_job(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_count, 1);
}

TT_TEST(pool_runs_everything)
{
    ts_pool *p;
    TT_OK(ts_pool_create("t", 3, 0, &p));
    for (int i = 0; i < 1000; i++) TT_OK(ts_pool_submit(p, count_job, NULL));
    ts_pool_drain(p);
    TT_ASSERT_EQ_INT(atomic_load(&g_count), 1000);
    for (int i = 0; i < 100; i++) TT_OK(ts_pool_submit(p, count_job, NULL));
    ts_pool_destroy(p); /* runs what was queued */
    TT_ASSERT_EQ_INT(atomic_load(&g_count), 1100);
}

/* One worker held by a job that waits for a flag, so the order the queued
 * jobs run in is decided by the queue alone. */
static atomic_int g_hold, g_order[3], g_ran;
static void hold_job(void *arg)
{
    (void)arg;
    while (atomic_load(&g_hold)) ts_sleep_ms(1);
}
static void order_job(void *arg)
{
    atomic_store(&g_order[atomic_fetch_add(&g_ran, 1)], (int)(intptr_t)arg);
}

TT_TEST(pool_submit_first_runs_ahead_of_queued_jobs)
{
    /* Whether or not the worker has taken the holder yet, job 3 goes ahead
     * of jobs 1 and 2. */
    ts_pool *p;
    TT_OK(ts_pool_create("t", 1, 0, &p));
    atomic_store(&g_hold, 1);
    TT_OK(ts_pool_submit(p, hold_job, NULL));
    TT_OK(ts_pool_submit(p, order_job, (void *)(intptr_t)1));
    TT_OK(ts_pool_submit(p, order_job, (void *)(intptr_t)2));
    TT_OK(ts_pool_submit_first(p, order_job, (void *)(intptr_t)3));
    atomic_store(&g_hold, 0);
    ts_pool_drain(p);
    TT_ASSERT_EQ_INT(atomic_load(&g_ran), 3);
    TT_ASSERT_EQ_INT(atomic_load(&g_order[0]), 3);
    TT_ASSERT_EQ_INT(atomic_load(&g_order[1]), 1);
    TT_ASSERT_EQ_INT(atomic_load(&g_order[2]), 2);
    ts_pool_destroy(p);
}

TT_TEST(retry_policy)
{
    ts_retry r;
    ts_retry_init(&r, 10000, 1, 4, 3);
    TT_ASSERT(!ts_retry_next(&r, TS_E_AUTH)); /* not retriable */
    ts_retry_init(&r, 10000, 1, 4, 3);
    TT_ASSERT(ts_retry_next(&r, TS_E_REMOTE_RETRIABLE));
    TT_ASSERT(ts_retry_next(&r, TS_E_TIMEOUT));
    TT_ASSERT(!ts_retry_next(&r, TS_E_REMOTE_RETRIABLE)); /* attempts used up */
    ts_retry_init(&r, 0, 1, 4, 0);
    ts_sleep_ms(2);
    TT_ASSERT(!ts_retry_next(&r, TS_E_REMOTE_RETRIABLE)); /* deadline passed */
    TT_ASSERT(ts_status_is_retriable(TS_E_BACKPRESSURE));
    TT_ASSERT(!ts_status_is_retriable(TS_E_NOT_FOUND));
}

TT_TEST(atomic_write_and_errors)
{
    char dir[256], path[300], err[512];
    tt_tmpdir(dir, sizeof(dir), "fs");
    snprintf(path, sizeof(path), "%s/sub/dir", dir);
    TT_OK(ts_fs_mkdirs(path, err, sizeof(err)));
    snprintf(path, sizeof(path), "%s/sub/dir/f", dir);
    TT_OK(ts_fs_write_atomic(path, "abc", 3, err, sizeof(err)));
    TT_OK(ts_fs_write_atomic(path, "abcd", 4, err, sizeof(err)));
    uint8_t *d;
    size_t n;
    TT_OK(ts_fs_read_all(path, 100, &d, &n, err, sizeof(err)));
    TT_ASSERT_EQ_INT(n, 4);
    TT_ASSERT(!memcmp(d, "abcd", 4));
    free(d);
    TT_ASSERT_EQ_INT(ts_fs_read_all(path, 2, &d, &n, err, sizeof(err)), TS_E_NOMEM);
    TT_ASSERT_EQ_INT(ts_fs_du(dir), 4); /* no temp files left behind */
    snprintf(path, sizeof(path), "%s/missing", dir);
    TT_ASSERT_EQ_INT(ts_fs_read_all(path, 100, &d, &n, err, sizeof(err)), TS_E_NOT_FOUND);
    TT_ASSERT(strstr(err, "missing") != NULL);
    TT_OK(ts_fs_rmtree(dir, err, sizeof(err)));
    TT_ASSERT(access(dir, F_OK) != 0);
}

TT_TEST(err_prefix_keeps_message)
{
    char err[64] = "";
    ts_err_set(err, sizeof(err), TS_E_IO, "inner reason");
    ts_err_prefix(err, sizeof(err), TS_E_IO, "outer %d", 7);
    TT_ASSERT_STR(err, "outer 7: inner reason");
    TT_ASSERT_STR(ts_status_name(TS_E_CHECKSUM), "TS_E_CHECKSUM");
}

/* The status table (include/tierstore_status.def): every code from TS_OK to
 * the last one has its own name, and exactly the transient ones retry. */
TT_TEST(status_table_names_and_retriable)
{
    for (int c = 0; c >= TS_E_FENCED; c--) {
        const char *n = ts_status_name((ts_status)c);
        TT_ASSERT_MSG(strncmp(n, "TS_", 3) == 0 && strcmp(n, "TS_E_UNKNOWN") != 0, "code %d: %s", c,
                      n);
        int want = c == TS_E_BACKPRESSURE || c == TS_E_REMOTE_RETRIABLE || c == TS_E_TIMEOUT ||
                   c == TS_E_CHECKSUM;
        TT_ASSERT_MSG(ts_status_is_retriable((ts_status)c) == want, "code %d (%s)", c, n);
    }
    TT_ASSERT_STR(ts_status_name(TS_OK), "TS_OK");
    TT_ASSERT_STR(ts_status_name(TS_E_FENCED), "TS_E_FENCED");
    TT_ASSERT_STR(ts_status_name((ts_status)(TS_E_FENCED - 1)), "TS_E_UNKNOWN");
    TT_ASSERT_STR(ts_status_name((ts_status)1), "TS_E_UNKNOWN");
    TT_ASSERT(!ts_status_is_retriable((ts_status)-999));
}

TT_TEST(config_typed_settings)
{
    char err[512] = "";
    TT_ASSERT_MSG(ts_config_table_check(err, sizeof(err)) == 0, "%s", err);
    /* Defaults, with or without a config. */
    const ts_settings *d = ts_config_settings(NULL);
    TT_ASSERT_EQ_INT(d->log_segment_bytes, 1073741824);
    TT_ASSERT_EQ_INT(d->log_retention_bytes, -1);
    TT_ASSERT_EQ_INT(d->remote_storage_enable, 1);
    TT_ASSERT_STR(d->log_dirs, "/tmp/tierstore-data");
    TT_ASSERT_STR(d->s3_path_style_access, "auto");
    ts_config *c = ts_config_create();
    const ts_settings *s = ts_config_settings(c);
    TT_ASSERT_EQ_INT(s->log_segment_bytes, d->log_segment_bytes);
    TT_ASSERT_STR(s->remote_storage_url, "");
    /* Set, set again, and a refused value leaves the field alone. */
    TT_OK(ts_config_set(c, "log.segment.bytes", "16777216", err, sizeof(err)));
    TT_OK(ts_config_set(c, "remote.storage.enable", "false", err, sizeof(err)));
    TT_OK(ts_config_set(c, "remote.storage.url", "file:///tmp/a", err, sizeof(err)));
    TT_OK(ts_config_set(c, "remote.storage.url", "file:///tmp/b", err, sizeof(err)));
    TT_ASSERT_EQ_INT(ts_config_set(c, "log.segment.bytes", "1", err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT_EQ_INT(s->log_segment_bytes, 16777216);
    TT_ASSERT_EQ_INT(s->remote_storage_enable, 0);
    TT_ASSERT_STR(s->remote_storage_url, "file:///tmp/b");
    /* The by-name getters agree with the fields. */
    TT_ASSERT_EQ_INT(ts_config_get_int(c, "log.segment.bytes"), s->log_segment_bytes);
    TT_ASSERT_EQ_INT(ts_config_get_bool(c, "remote.storage.enable"), 0);
    /* A copy (how topic overrides start) has its own fields; overriding
     * the copy leaves the original as it was. */
    ts_config *t = ts_config_dup(c);
    const ts_settings *ts = ts_config_settings(t);
    TT_ASSERT(ts != s);
    TT_ASSERT_STR(ts->remote_storage_url, "file:///tmp/b");
    TT_OK(ts_config_set(t, "log.segment.bytes", "2097152", err, sizeof(err)));
    TT_ASSERT_EQ_INT(ts->log_segment_bytes, 2097152);
    TT_ASSERT_EQ_INT(s->log_segment_bytes, 16777216);
    ts_config_destroy(c);
    TT_ASSERT_STR(ts->remote_storage_url, "file:///tmp/b"); /* owned by t */
    ts_config_destroy(t);
}

TT_TEST(strlist_grows_sorts_and_searches)
{
    ts_strlist l = {0};
    char name[16];
    for (int i = 99; i >= 0; i--) { /* past the first growth steps */
        snprintf(name, sizeof(name), "k%03d", i);
        TT_ASSERT_EQ_INT(ts_strlist_add(&l, name), 0);
    }
    TT_ASSERT_EQ_INT(ts_strlist_addn(&l, "topic/0/x", 5), 0);
    TT_ASSERT_EQ_INT(l.n, 101);
    TT_ASSERT_STR(l.v[100], "topic");
    TT_ASSERT(ts_strlist_has(&l, "k042") && ts_strlist_has(&l, "topic"));
    TT_ASSERT(!ts_strlist_has(&l, "k100") && !ts_strlist_has(&l, "topic/"));
    ts_strlist_sort(&l);
    for (size_t i = 1; i < l.n; i++) TT_ASSERT(strcmp(l.v[i - 1], l.v[i]) < 0);
    TT_ASSERT_STR(l.v[0], "k000");
    TT_ASSERT(ts_strlist_sorted_has(&l, "k000") && ts_strlist_sorted_has(&l, "topic"));
    TT_ASSERT(!ts_strlist_sorted_has(&l, "k1000"));
    const char *a = "a", *b = "b";
    TT_ASSERT(ts_strptr_cmp(&a, &b) < 0 && ts_strptr_cmp(&b, &a) > 0 && ts_strptr_cmp(&a, &a) == 0);
    ts_strlist_free(&l);
    TT_ASSERT(l.v == NULL && l.n == 0);
    TT_ASSERT(!ts_strlist_sorted_has(&l, "k000"));
    ts_strlist_free(&l); /* an empty list frees again */
}

/* log.format=json: escaping, the suppressed count, and a line cut at the
 * buffer's end that still closes its object; text keeps its old shape. */
TT_TEST(logline_json_and_text)
{
    char line[256];
    size_t n = ts_logline_render(line, sizeof line, TS_LOGLINE_JSON, "WARN", "upload",
                                 "key \"a\\b\"\n\ttab \x01 caf\xc3\xa9", 3);
    TT_ASSERT(n > 0 && n < sizeof line && line[n - 1] == '\n');
    line[n] = 0;
    TT_ASSERT_MSG(strncmp(line, "{\"ts\":\"", 7) == 0, "%s", line);
    TT_ASSERT_MSG(strstr(line, "\"level\":\"WARN\",\"logger\":\"upload\",\"msg\":\"key "
                                 "\\\"a\\\\b\\\"\\n\\u0009tab \\u0001 caf\xc3\xa9\","
                                 "\"suppressed\":3}\n") != NULL,
                  "%s", line);
    char big[3000];
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = 0;
    n = ts_logline_render(line, 128, TS_LOGLINE_JSON, "INFO", "broker", big, 0);
    TT_ASSERT(n <= 128 && line[n - 1] == '\n' && line[n - 2] == '}' && line[n - 3] == '"');
    TT_ASSERT(line[n - 4] == '"' && line[n - 5] == '\\'); /* cut between escapes, not inside */
    n = ts_logline_render(line, sizeof line, TS_LOGLINE_TEXT, "INFO", "index", "hello", 0);
    line[n] = 0;
    TT_ASSERT_MSG(strlen(line) == 24 + 7 + 8 + 6 && strstr(line, "Z INFO  [index] hello\n"),
                  "%s", line);
    TT_ASSERT_EQ_INT(ts_logline_format_parse("json"), TS_LOGLINE_JSON);
    TT_ASSERT_EQ_INT(ts_logline_format_parse("text"), TS_LOGLINE_TEXT);
    TT_ASSERT_EQ_INT(ts_logline_format_parse("JSON"), -1);
    TT_ASSERT_EQ_INT(ts_logline_format_parse(NULL), -1);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(crc32c_known_vectors);
    TT_RUN(crc32c_combine_equals_concatenation);
    TT_RUN(status_table_names_and_retriable);
    TT_RUN(batch_build_validate_and_reject);
    TT_RUN(config_validation_messages);
    TT_RUN(config_file_parsing);
    TT_RUN(buf_hard_cap);
    TT_RUN(pool_runs_everything);
    TT_RUN(pool_submit_first_runs_ahead_of_queued_jobs);
    TT_RUN(retry_policy);
    TT_RUN(atomic_write_and_errors);
    TT_RUN(err_prefix_keeps_message);
    TT_RUN(config_typed_settings);
    TT_RUN(strlist_grows_sorts_and_searches);
    TT_RUN(logline_json_and_text);
    return tt_summary();
}
