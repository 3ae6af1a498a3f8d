/*
 * fuzz_etcd_json.c — libFuzzer target for the etcd client's response
 * parsers (etcd/etcd_json.c).
 *
 * Every byte the client parses comes from the network: an etcd member, or
 * whatever answers on its address. The parsers must survive any bytes: no
 * crash, no leak, no out-of-bounds read (ASan watches), and what they
 * accept must be consistent (checked below: lengths match the NUL
 * terminators, a refused input leaves the result empty).
 *
 * The first byte picks the parser, the rest is its input:
 *   0 range  1 put  2 delete  3 txn  4 lease  5 error body
 *   6 a watch stream through the line splitter, cut where the second byte says
 *   7 one watch line
 *
 *   CC=clang cmake -S . -B build-fuzz -DTS_FUZZ=ON
 *   make -C build-fuzz fuzz_etcd_json
 *   scripts/fuzz.sh 30 fuzz_etcd_json
 *
 * Seeds: answers captured from etcd 3.4 in tests/fuzz/corpus/fuzz_etcd_json/
 * (tests/fuzz/make_corpus.py regenerates them), each prefixed with its
 * selector byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXV 4096

static void check_kvs(const ts_etcd_kv *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!kvs[i].key || !kvs[i].value || kvs[i].key_len > MAXV || kvs[i].value_len > MAXV ||
            kvs[i].key[kvs[i].key_len] != '\0' || kvs[i].value[kvs[i].value_len] != '\0')
            abort();
    }
}

static int on_line(void *arg, const char *line, size_t len)
{
    ts_etcd_watch_msg m;
    char err[256];
    (*(int *)arg)++;
    if (memchr(line, '\n', len)) abort();
    if (ts_etcd_json_parse_watch(line, len, MAXV, &m, err, sizeof(err)) == TS_ETCD_OK) {
        for (size_t i = 0; i < m.nevents; i++) check_kvs(&m.events[i].kv, 1);
        ts_etcd_watch_msg_free(&m);
    } else if (m.events || m.nevents) {
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned sel = data[0] % 8;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char err[512];
    switch (sel) {
    case 0:
    case 1:
    case 2: {
        ts_etcd_resp r;
        if (ts_etcd_json_parse_resp((ts_etcd_op_type)sel, p, n, MAXV, &r, err, sizeof(err)) ==
            TS_ETCD_OK) {
            check_kvs(r.kvs, r.nkvs);
            ts_etcd_resp_free(&r);
        } else if (r.kvs || r.nkvs) {
            abort();
        }
        break;
    }
    case 3: {
        ts_etcd_txn_result t;
        if (ts_etcd_json_parse_txn(p, n, MAXV, &t, err, sizeof(err)) == TS_ETCD_OK) {
            for (size_t i = 0; i < t.nresponses; i++)
                check_kvs(t.responses[i].kvs, t.responses[i].nkvs);
            ts_etcd_txn_result_free(&t);
        } else if (t.responses || t.nresponses) {
            abort();
        }
        break;
    }
    case 4: {
        int64_t id, ttl, rev;
        (void)ts_etcd_json_parse_lease(p, n, &id, &ttl, &rev, err, sizeof(err));
        break;
    }
    case 5: {
        int code;
        char msg[128];
        if (ts_etcd_json_error(p, n, &code, msg, sizeof(msg)) && strlen(msg) >= sizeof(msg))
            abort();
        break;
    }
    case 6: {
        if (n < 1) break;
        size_t cut = (unsigned char)p[0];
        p++;
        n--;
        if (cut > n) cut = n;
        ts_etcd_lines l;
        ts_etcd_lines_init(&l, 2048);
        int lines = 0;
        if (ts_etcd_lines_feed(&l, p, cut, on_line, &lines) == 0)
            (void)ts_etcd_lines_feed(&l, p + cut, n - cut, on_line, &lines);
        if (l.cap > 2048 || l.len > 2048) abort();
        ts_etcd_lines_free(&l);
        break;
    }
    case 7: {
        int lines = 0;
        on_line(&lines, p, n && !memchr(p, '\n', n) ? n : 0);
        break;
    }
    }
    return 0;
}
