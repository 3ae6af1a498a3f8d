/*
 * etcd_kv.c — range, put, delete and txn: build the body (etcd_json.c),
 * one call (etcd_http.c), parse the answer. Any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "etcd_json.h"

static const char *const op_names[] = {"range", "put", "delete"};
static const char *const op_paths[] = {"/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange"};

ts_etcd_status ts_etcd_do(ts_etcd *c, const ts_etcd_op *op, ts_etcd_resp *out, char *errstr,
                          size_t errlen)
{
    if (out) memset(out, 0, sizeof(*out));
    if (!c || !op || (unsigned)op->type > TS_ETCD_OP_DELETE)
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd: bad op");
    char k[128], subject[160];
    ts_etcd_key_str(op->key, op->key_len, k, sizeof(k));
    snprintf(subject, sizeof(subject), "%s '%s'", op->prefix ? "prefix" : "key", k);
    char jerr[256];
    jerr[0] = '\0';
    ts_etcd_status st;
    char *body = ts_etcd_json_op(op, c->o.max_value_bytes, &st, jerr, sizeof(jerr));
    if (!body)
        return etcd_err(errstr, errlen, st, "etcd %s %s: %s", op_names[op->type], subject, jerr);
    etcd_body resp = {0};
    st = etcd_call(c, op_names[op->type], subject, op_paths[op->type], body, 0,
                                  &resp, errstr, errlen);
    free(body);
    if (st == TS_ETCD_OK) {
        ts_etcd_resp tmp, *r = out ? out : &tmp;
        st = ts_etcd_json_parse_resp(op->type, resp.data, resp.len, c->o.max_value_bytes, r,
                                     jerr, sizeof(jerr));
        if (st)
            etcd_err(errstr, errlen, st, "etcd %s %s at %s: %s", op_names[op->type], subject,
                     ts_etcd_current_endpoint(c), jerr);
        if (!out) ts_etcd_resp_free(&tmp);
    }
    etcd_body_free(&resp);
    return st;
}

ts_etcd_status ts_etcd_get(ts_etcd *c, const void *key, size_t key_len, int prefix, int64_t limit,
                           ts_etcd_resp *out, char *errstr, size_t errlen)
{
    ts_etcd_op op = {.type = TS_ETCD_OP_RANGE, .key = key, .key_len = key_len,
                     .prefix = prefix, .limit = limit};
    return ts_etcd_do(c, &op, out, errstr, errlen);
}

ts_etcd_status ts_etcd_put(ts_etcd *c, const void *key, size_t key_len, const void *value,
                           size_t value_len, int64_t lease, int64_t *revision, char *errstr,
                           size_t errlen)
{
    ts_etcd_op op = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = key_len, .value = value,
                     .value_len = value_len, .lease = lease};
    ts_etcd_resp r;
    ts_etcd_status st = ts_etcd_do(c, &op, &r, errstr, errlen);
    if (revision) *revision = st ? 0 : r.revision;
    ts_etcd_resp_free(&r);
    return st;
}

ts_etcd_status ts_etcd_delete(ts_etcd *c, const void *key, size_t key_len, int prefix,
                              int64_t *deleted, char *errstr, size_t errlen)
{
    ts_etcd_op op = {.type = TS_ETCD_OP_DELETE, .key = key, .key_len = key_len, .prefix = prefix};
    ts_etcd_resp r;
    ts_etcd_status st = ts_etcd_do(c, &op, &r, errstr, errlen);
    if (deleted) *deleted = st ? 0 : r.count;
    ts_etcd_resp_free(&r);
    return st;
}

ts_etcd_status ts_etcd_txn(ts_etcd *c, const ts_etcd_cmp *cmps, size_t ncmps,
                           const ts_etcd_op *success, size_t nsuccess, const ts_etcd_op *failure,
                           size_t nfailure, ts_etcd_txn_result *out, char *errstr, size_t errlen)
{
    if (out) memset(out, 0, sizeof(*out));
    if (!c || (ncmps && !cmps) || (nsuccess && !success) || (nfailure && !failure))
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd txn: bad arguments");
    char k[128], subject[200];
    if (ncmps) {
        ts_etcd_key_str(cmps[0].key, cmps[0].key_len, k, sizeof(k));
        snprintf(subject, sizeof(subject), "comparing key '%s'%s", k, ncmps > 1 ? " (and more)" : "");
    } else if (nsuccess) {
        ts_etcd_key_str(success[0].key, success[0].key_len, k, sizeof(k));
        snprintf(subject, sizeof(subject), "on key '%s'", k);
    } else {
        snprintf(subject, sizeof(subject), "(empty)");
    }
    char jerr[256];
    jerr[0] = '\0';
    ts_etcd_status st;
    char *body = ts_etcd_json_txn(cmps, ncmps, success, nsuccess, failure, nfailure,
                                  c->o.max_value_bytes, &st, jerr, sizeof(jerr));
    if (!body) return etcd_err(errstr, errlen, st, "etcd txn %s: %s", subject, jerr);
    etcd_body resp = {0};
    st = etcd_call(c, "txn", subject, "/v3/kv/txn", body, 0, &resp, errstr, errlen);
    free(body);
    if (st == TS_ETCD_OK) {
        ts_etcd_txn_result tmp, *r = out ? out : &tmp;
        st = ts_etcd_json_parse_txn(resp.data, resp.len, c->o.max_value_bytes, r, jerr,
                                    sizeof(jerr));
        if (st)
            etcd_err(errstr, errlen, st, "etcd txn %s at %s: %s", subject,
                     ts_etcd_current_endpoint(c), jerr);
        if (!out) ts_etcd_txn_result_free(&tmp);
    }
    etcd_body_free(&resp);
    return st;
}

ts_etcd_status ts_etcd_compact(ts_etcd *c, int64_t revision, char *errstr, size_t errlen)
{
    if (!c || revision <= 0)
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd compact: revision must be > 0");
    char body[64], subject[48];
    snprintf(body, sizeof(body), "{\"revision\":\"%lld\"}", (long long)revision);
    snprintf(subject, sizeof(subject), "to revision %lld", (long long)revision);
    etcd_body resp = {0};
    ts_etcd_status st =
        etcd_call(c, "compact", subject, "/v3/kv/compaction", body, 0, &resp, errstr, errlen);
    etcd_body_free(&resp);
    return st;
}
