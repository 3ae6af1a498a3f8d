/*
 * etcd_json.h — the gateway's JSON, both ways: request bodies built from
 * ts_etcd_op/ts_etcd_cmp, response bodies parsed into the public result
 * types. Pure (cJSON and OpenSSL's base64 only, no I/O), so the unit test
 * and the fuzzer call it directly.
 *
 * What the gateway sends (etcd 3.4, grpc-gateway with OrigName, defaults
 * omitted): int64 fields as decimal strings ("revision":"7"), bytes as
 * standard base64 with padding, zero values absent (a PUT event has no
 * "type", a failed txn no "succeeded", a range of nothing no "kvs").
 * Errors: {"error":"...","message":"...","code":N} on a non-200 answer,
 * {"error":{"grpc_code":N,"http_code":N,"message":"..."}} inside a stream;
 * streamed results (keepalive, watch) come wrapped as {"result":{...}}.
 */
#ifndef TS_ETCD_JSON_H
#define TS_ETCD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "etcd/etcd.h"

/* Writes the printf-style message into errstr (when given) and returns st:
 * every failure of the module's files goes through it (etcd_status.c). */
ts_etcd_status etcd_err(char *errstr, size_t errlen, ts_etcd_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Request bodies, malloc'd NUL-terminated JSON; NULL on bad input
 * (*st says why, a message in errstr). max_bytes caps each key/value. */
char *ts_etcd_json_op(const ts_etcd_op *op, size_t max_bytes, ts_etcd_status *st, char *errstr,
                      size_t errlen);
char *ts_etcd_json_txn(const ts_etcd_cmp *cmps, size_t ncmps, const ts_etcd_op *success,
                       size_t nsuccess, const ts_etcd_op *failure, size_t nfailure,
                       size_t max_bytes, ts_etcd_status *st, char *errstr, size_t errlen);
char *ts_etcd_json_lease_grant(int64_t ttl_s, int64_t id);
char *ts_etcd_json_lease_id(int64_t id); /* keepalive, revoke */
char *ts_etcd_json_watch_create(const void *key, size_t key_len, int prefix,
                                int64_t start_revision, size_t max_bytes, ts_etcd_status *st,
                                char *errstr, size_t errlen);

/* An error body. Returns 1 and fills code/msg when body is one of the two
 * error shapes above, 0 otherwise. */
int ts_etcd_json_error(const char *body, size_t len, int *grpc_code, char *msg, size_t msglen);

/* Responses. Each refuses (TS_ETCD_E_PROTOCOL, message in errstr) what is
 * not valid JSON of the expected shape, and values above max_value
 * (TS_ETCD_E_TOO_LARGE); on failure *out is left empty. */
ts_etcd_status ts_etcd_json_parse_resp(ts_etcd_op_type type, const char *body, size_t len,
                                       size_t max_value, ts_etcd_resp *out, char *errstr,
                                       size_t errlen);
ts_etcd_status ts_etcd_json_parse_txn(const char *body, size_t len, size_t max_value,
                                      ts_etcd_txn_result *out, char *errstr, size_t errlen);
/* grant, keepalive ({"result":...} accepted) and revoke answers. A
 * keepalive of a lease that is gone carries no TTL: *ttl = 0. */
ts_etcd_status ts_etcd_json_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl,
                                        int64_t *revision, char *errstr, size_t errlen);

/* One line of the watch stream. */
typedef struct ts_etcd_watch_msg {
    int64_t header_revision;
    int created, canceled;
    int64_t compact_revision;
    char cancel_reason[256];
    ts_etcd_event *events;
    size_t nevents;
    int is_error;        /* {"error":...}: grpc_code and cancel_reason hold it */
    int grpc_code;
} ts_etcd_watch_msg;
ts_etcd_status ts_etcd_json_parse_watch(const char *line, size_t len, size_t max_value,
                                        ts_etcd_watch_msg *out, char *errstr, size_t errlen);
void ts_etcd_watch_msg_free(ts_etcd_watch_msg *m);

/* Splits a byte stream into lines, as libcurl hands it over in pieces of
 * any size. The buffer never grows past max; a line longer than that is
 * refused. feed() calls on_line for every complete line (without '\n',
 * empty lines skipped); a non-zero return from on_line stops and is
 * returned. */
typedef struct ts_etcd_lines {
    char *buf;
    size_t len, cap, max;
    int overflow;
} ts_etcd_lines;
void ts_etcd_lines_init(ts_etcd_lines *l, size_t max);
void ts_etcd_lines_reset(ts_etcd_lines *l);
void ts_etcd_lines_free(ts_etcd_lines *l);
int ts_etcd_lines_feed(ts_etcd_lines *l, const char *p, size_t n,
                       int (*on_line)(void *arg, const char *line, size_t len), void *arg);

/* base64 (standard alphabet, padded). decode is strict: refuses bad
 * characters, bad padding, lengths not a multiple of 4, and outputs past
 * max. *out is malloc'd and NUL-terminated. */
int ts_etcd_b64_encode(const void *p, size_t n, char **out);
int ts_etcd_b64_decode(const char *s, size_t n, size_t max, char **out, size_t *out_len);

/* Prefix end: the smallest key greater than every key starting with key
 * (a single 0 byte for "everything" when key is empty or all 0xff).
 * Writes into out (capacity key_len or 1), returns its length. */
size_t ts_etcd_prefix_end(const void *key, size_t key_len, unsigned char *out);

/* "key" for messages: printable bytes, others as \xNN, cut at 80. */
void ts_etcd_key_str(const void *key, size_t key_len, char *out, size_t outlen);

#endif
