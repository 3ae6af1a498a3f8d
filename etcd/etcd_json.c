/*
 * etcd_json.c — request and response codecs of the gateway's JSON.
 *
 * Pure: no I/O, no global state, so the unit test feeds it captured etcd
 * answers and the fuzzer feeds it anything. Every parser reads through
 * cJSON_ParseWithLength (bounded by the body length, which the caller
 * capped), checks each field's JSON type before use and has one exit;
 * absent fields take protobuf's zero value, since the gateway omits them.
 * int64 fields are decimal strings (JSON numbers lose precision past 2^53);
 * a plain integer number is accepted as well, when exact.
 */
#include "etcd_json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * base64, prefix end, key names
 * ------------------------------------------------------------------------ */
int ts_etcd_b64_encode(const void *p, size_t n, char **out)
{
    *out = NULL;
    if (n > (size_t)INT_MAX / 4 * 3 - 3) return -1;
    size_t cap = (n + 2) / 3 * 4 + 1;
    char *s = malloc(cap);
    if (!s) return -1;
    int w = EVP_EncodeBlock((unsigned char *)s, p ? p : (const void *)"", (int)n);
    if (w < 0 || (size_t)w >= cap) {
        free(s);
        return -1;
    }
    s[w] = '\0';
    *out = s;
    return 0;
}

static int b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int ts_etcd_b64_decode(const char *s, size_t n, size_t max, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (n % 4) return -1;
    size_t pad = 0;
    if (n >= 1 && s[n - 1] == '=') pad++;
    if (n >= 2 && s[n - 2] == '=') pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char((unsigned char)s[i])) return -1;
    size_t dec = n / 4 * 3 - pad;
    if (dec > max || n > (size_t)INT_MAX) return -2;
    char *d = malloc(n / 4 * 3 + 1);
    if (!d) return -1;
    if (n) {
        int w = EVP_DecodeBlock((unsigned char *)d, (const unsigned char *)s, (int)n);
        if (w < 0 || (size_t)w != n / 4 * 3) {
            free(d);
            return -1;
        }
    }
    d[dec] = '\0';
    *out = d;
    *out_len = dec;
    return 0;
}

size_t ts_etcd_prefix_end(const void *key, size_t key_len, unsigned char *out)
{
    const unsigned char *k = key;
    size_t n = key_len;
    while (n > 0 && k[n - 1] == 0xff) n--;
    if (n == 0) {
        out[0] = 0;
        return 1;
    }
    memcpy(out, k, n);
    out[n - 1]++;
    return n;
}

void ts_etcd_key_str(const void *key, size_t key_len, char *out, size_t outlen)
{
    const unsigned char *k = key;
    size_t o = 0;
    if (!outlen) return;
    for (size_t i = 0; i < key_len && o + 5 < outlen; i++) {
        if (o >= 80) {
            o += (size_t)snprintf(out + o, outlen - o, "...");
            break;
        }
        if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
            out[o++] = (char)k[i];
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", k[i]);
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */
static int add_bytes(cJSON *o, const char *name, const void *p, size_t n)
{
    char *b;
    if (ts_etcd_b64_encode(p, n, &b)) return -1;
    cJSON *s = cJSON_AddStringToObject(o, name, b);
    free(b);
    return s ? 0 : -1;
}

static int add_i64(cJSON *o, const char *name, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%lld", (long long)v);
    return cJSON_AddStringToObject(o, name, num) ? 0 : -1;
}

static char *print_free(cJSON *root)
{
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

typedef struct ectx {
    char *errstr;
    size_t errlen;
    ts_etcd_status st;
} ectx;
#define efail(e, code, ...) ((e)->st = etcd_err((e)->errstr, (e)->errlen, (code), __VA_ARGS__))

static int check_len(ectx *e, const char *what, size_t n, size_t max)
{
    if (n > max) {
        efail(e, TS_ETCD_E_TOO_LARGE, "%s of %zu bytes exceeds the %zu-byte cap", what, n,
              max);
        return -1;
    }
    return 0;
}

/* Adds key (and range_end for prefix) to o. */
static int add_key_range(cJSON *o, const void *key, size_t key_len, int prefix)
{
    if (add_bytes(o, "key", key, key_len)) return -1;
    if (prefix) {
        unsigned char *end = malloc(key_len ? key_len : 1);
        if (!end) return -1;
        size_t n = ts_etcd_prefix_end(key, key_len, end);
        int rc = add_bytes(o, "range_end", end, n);
        free(end);
        if (rc) return -1;
    }
    return 0;
}

static cJSON *op_object(ectx *e, const ts_etcd_op *op, size_t max_bytes)
{
    if (!op || (!op->key && op->key_len)) {
        efail(e, TS_ETCD_E_INVAL, "etcd request without a key");
        return NULL;
    }
    if (check_len(e, "key", op->key_len, max_bytes)) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) goto nomem;
    switch (op->type) {
    case TS_ETCD_OP_RANGE:
        if (add_key_range(o, op->key, op->key_len, op->prefix)) goto nomem;
        if (op->limit > 0 && add_i64(o, "limit", op->limit)) goto nomem;
        if (op->revision > 0 && add_i64(o, "revision", op->revision)) goto nomem;
        if (op->keys_only && !cJSON_AddTrueToObject(o, "keys_only")) goto nomem;
        break;
    case TS_ETCD_OP_PUT:
        if (op->prefix) {
            efail(e, TS_ETCD_E_INVAL, "etcd put takes one key, not a prefix");
            goto bad;
        }
        if (check_len(e, "value", op->value_len, max_bytes)) goto bad;
        if (!op->value && op->value_len) {
            efail(e, TS_ETCD_E_INVAL, "etcd put without a value");
            goto bad;
        }
        if (add_bytes(o, "key", op->key, op->key_len)) goto nomem;
        if (add_bytes(o, "value", op->value, op->value_len)) goto nomem;
        if (op->lease && add_i64(o, "lease", op->lease)) goto nomem;
        if (op->prev_kv && !cJSON_AddTrueToObject(o, "prev_kv")) goto nomem;
        break;
    case TS_ETCD_OP_DELETE:
        if (add_key_range(o, op->key, op->key_len, op->prefix)) goto nomem;
        if (op->prev_kv && !cJSON_AddTrueToObject(o, "prev_kv")) goto nomem;
        break;
    default:
        efail(e, TS_ETCD_E_INVAL, "unknown etcd op type %d", (int)op->type);
        goto bad;
    }
    return o;
nomem:
    efail(e, TS_ETCD_E_NOMEM, "out of memory building an etcd request");
bad:
    cJSON_Delete(o);
    return NULL;
}

char *ts_etcd_json_op(const ts_etcd_op *op, size_t max_bytes, ts_etcd_status *st, char *errstr,
                      size_t errlen)
{
    ectx ec = {errstr, errlen, TS_ETCD_OK}, *e = &ec;
    cJSON *o = op_object(e, op, max_bytes);
    char *s = o ? print_free(o) : NULL;
    if (o && !s) efail(e, TS_ETCD_E_NOMEM, "out of memory building an etcd request");
    *st = s ? TS_ETCD_OK : ec.st ? ec.st : TS_ETCD_E_NOMEM;
    return s;
}

static const char *const cmp_targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const cmp_target_fields[] = {"version", "create_revision", "mod_revision",
                                                "value", "lease"};
static const char *const cmp_results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
static const char *const op_wrap[] = {"request_range", "request_put", "request_delete_range"};

static int add_ops(ectx *e, cJSON *root, const char *name, const ts_etcd_op *ops, size_t n,
                   size_t max_bytes)
{
    if (!n) return 0;
    cJSON *arr = cJSON_AddArrayToObject(root, name);
    if (!arr) goto nomem;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = op_object(e, &ops[i], max_bytes);
        if (!o) return -1;
        cJSON *w = cJSON_CreateObject();
        if (!w || !cJSON_AddItemToArray(arr, w)) {
            cJSON_Delete(w);
            cJSON_Delete(o);
            goto nomem;
        }
        cJSON_AddItemToObject(w, op_wrap[ops[i].type], o);
    }
    return 0;
nomem:
    efail(e, TS_ETCD_E_NOMEM, "out of memory building an etcd txn");
    return -1;
}

char *ts_etcd_json_txn(const ts_etcd_cmp *cmps, size_t ncmps, const ts_etcd_op *success,
                       size_t nsuccess, const ts_etcd_op *failure, size_t nfailure,
                       size_t max_bytes, ts_etcd_status *st, char *errstr, size_t errlen)
{
    ectx ec = {errstr, errlen, TS_ETCD_OK}, *e = &ec;
    *st = TS_ETCD_OK;
    cJSON *root = cJSON_CreateObject();
    if (!root) goto nomem;
    if (ncmps) {
        cJSON *arr = cJSON_AddArrayToObject(root, "compare");
        if (!arr) goto nomem;
        for (size_t i = 0; i < ncmps; i++) {
            const ts_etcd_cmp *c = &cmps[i];
            if ((unsigned)c->target > TS_ETCD_CMP_LEASE || (unsigned)c->result > TS_ETCD_NOT_EQUAL ||
                (!c->key && c->key_len)) {
                efail(e, TS_ETCD_E_INVAL, "etcd txn: compare %zu is invalid", i);
                goto bad;
            }
            if (check_len(e, "compare key", c->key_len, max_bytes)) goto bad;
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(arr, o)) {
                cJSON_Delete(o);
                goto nomem;
            }
            if (add_bytes(o, "key", c->key, c->key_len)) goto nomem;
            if (!cJSON_AddStringToObject(o, "target", cmp_targets[c->target]) ||
                !cJSON_AddStringToObject(o, "result", cmp_results[c->result]))
                goto nomem;
            if (c->target == TS_ETCD_CMP_VALUE) {
                if (check_len(e, "compare value", c->value_len, max_bytes)) goto bad;
                if (add_bytes(o, "value", c->value, c->value_len)) goto nomem;
            } else if (add_i64(o, cmp_target_fields[c->target], c->number)) {
                goto nomem;
            }
        }
    }
    if (add_ops(e, root, "success", success, nsuccess, max_bytes)) goto bad;
    if (add_ops(e, root, "failure", failure, nfailure, max_bytes)) goto bad;
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) {
        efail(e, TS_ETCD_E_NOMEM, "out of memory building an etcd txn");
        *st = TS_ETCD_E_NOMEM;
    }
    return s;
nomem:
    efail(e, TS_ETCD_E_NOMEM, "out of memory building an etcd txn");
bad:
    cJSON_Delete(root);
    *st = ec.st ? ec.st : TS_ETCD_E_NOMEM;
    return NULL;
}

char *ts_etcd_json_lease_grant(int64_t ttl_s, int64_t id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || add_i64(o, "TTL", ttl_s) || (id && add_i64(o, "ID", id))) {
        cJSON_Delete(o);
        return NULL;
    }
    return print_free(o);
}

char *ts_etcd_json_lease_id(int64_t id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || add_i64(o, "ID", id)) {
        cJSON_Delete(o);
        return NULL;
    }
    return print_free(o);
}

char *ts_etcd_json_watch_create(const void *key, size_t key_len, int prefix,
                                int64_t start_revision, size_t max_bytes, ts_etcd_status *st,
                                char *errstr, size_t errlen)
{
    ectx ec = {errstr, errlen, TS_ETCD_OK}, *e = &ec;
    char *s = NULL;
    if (!key && key_len) {
        efail(e, TS_ETCD_E_INVAL, "etcd watch without a key");
        goto out;
    }
    if (check_len(e, "watch key", key_len, max_bytes)) goto out;
    cJSON *root = cJSON_CreateObject();
    cJSON *cr = root ? cJSON_AddObjectToObject(root, "create_request") : NULL;
    if (!cr || add_key_range(cr, key, key_len, prefix) ||
        (start_revision > 0 && add_i64(cr, "start_revision", start_revision))) {
        cJSON_Delete(root);
        efail(e, TS_ETCD_E_NOMEM, "out of memory building an etcd watch");
        goto out;
    }
    s = print_free(root);
    if (!s) efail(e, TS_ETCD_E_NOMEM, "out of memory building an etcd watch");
out:
    *st = s ? TS_ETCD_OK : ec.st ? ec.st : TS_ETCD_E_NOMEM;
    return s;
}

/* ------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------ */
/* An int64 field: absent -> 0; "123" or an exact integer number. */
static int get_i64(const cJSON *o, const char *name, int64_t *v)
{
    *v = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!f || cJSON_IsNull(f)) return 0;
    if (cJSON_IsString(f)) {
        const char *s = f->valuestring;
        if (!s || !*s || strlen(s) > 20) return -1;
        const char *d = *s == '-' ? s + 1 : s;
        if (!*d) return -1;
        for (const char *q = d; *q; q++)
            if (*q < '0' || *q > '9') return -1;
        errno = 0;
        char *end;
        long long x = strtoll(s, &end, 10);
        if (errno || *end) return -1;
        *v = (int64_t)x;
        return 0;
    }
    if (cJSON_IsNumber(f)) {
        double d = f->valuedouble;
        if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != (double)(int64_t)d)
            return -1;
        *v = (int64_t)d;
        return 0;
    }
    return -1;
}

static int get_bool(const cJSON *o, const char *name, int *v)
{
    *v = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!f || cJSON_IsNull(f)) return 0;
    if (!cJSON_IsBool(f)) return -1;
    *v = cJSON_IsTrue(f) ? 1 : 0;
    return 0;
}

/* A bytes field: absent -> empty. Returns 0, -1 malformed, -2 too large. */
static int get_bytes(const cJSON *o, const char *name, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!f || cJSON_IsNull(f)) {
        *out = calloc(1, 1);
        return *out ? 0 : -1;
    }
    if (!cJSON_IsString(f) || !f->valuestring) return -1;
    return ts_etcd_b64_decode(f->valuestring, strlen(f->valuestring), max, out, len);
}

static void kv_free(ts_etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

typedef struct pctx {
    size_t max_value;
    char *errstr;
    size_t errlen;
    ts_etcd_status st;
} pctx;

static int perr(pctx *c, ts_etcd_status st, const char *what)
{
    c->st = etcd_err(c->errstr, c->errlen, st, "etcd answer: %s", what);
    return -1;
}

static int parse_kv(pctx *c, const cJSON *o, ts_etcd_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
    if (!cJSON_IsObject(o)) return perr(c, TS_ETCD_E_PROTOCOL, "a kv is not an object");
    int rc = get_bytes(o, "key", c->max_value, &kv->key, &kv->key_len);
    if (!rc) rc = get_bytes(o, "value", c->max_value, &kv->value, &kv->value_len);
    if (rc) {
        kv_free(kv);
        return rc == -2 ? perr(c, TS_ETCD_E_TOO_LARGE, "a key or value exceeds the value cap")
                        : perr(c, TS_ETCD_E_PROTOCOL, "a key or value is not valid base64");
    }
    if (get_i64(o, "create_revision", &kv->create_revision) ||
        get_i64(o, "mod_revision", &kv->mod_revision) || get_i64(o, "version", &kv->version) ||
        get_i64(o, "lease", &kv->lease)) {
        kv_free(kv);
        return perr(c, TS_ETCD_E_PROTOCOL, "a kv revision is not an int64");
    }
    return 0;
}

/* A kv array (absent -> none). */
static int parse_kvs(pctx *c, const cJSON *arr, ts_etcd_kv **kvs, size_t *n)
{
    *kvs = NULL;
    *n = 0;
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr)) return perr(c, TS_ETCD_E_PROTOCOL, "kvs is not an array");
    size_t cnt = (size_t)cJSON_GetArraySize(arr);
    if (!cnt) return 0;
    ts_etcd_kv *v = calloc(cnt, sizeof(*v));
    if (!v) return perr(c, TS_ETCD_E_NOMEM, "out of memory");
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (i >= cnt || parse_kv(c, e, &v[i])) goto bad;
        i++;
    }
    *kvs = v;
    *n = i;
    return 0;
bad:
    if (c->st == TS_ETCD_OK) perr(c, TS_ETCD_E_PROTOCOL, "bad kv array");
    for (size_t j = 0; j < i; j++) kv_free(&v[j]);
    free(v);
    return -1;
}

static int header_revision(pctx *c, const cJSON *root, int64_t *rev)
{
    *rev = 0;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "header");
    if (!h) return 0;
    if (!cJSON_IsObject(h) || get_i64(h, "revision", rev))
        return perr(c, TS_ETCD_E_PROTOCOL, "header is malformed");
    return 0;
}

void ts_etcd_resp_free(ts_etcd_resp *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nkvs; i++) kv_free(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

/* The body of a range/put/delete response object, fills r. */
static int parse_resp_obj(pctx *c, ts_etcd_op_type type, const cJSON *o, ts_etcd_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (!cJSON_IsObject(o)) return perr(c, TS_ETCD_E_PROTOCOL, "response is not an object");
    if (header_revision(c, o, &r->revision)) return -1;
    switch (type) {
    case TS_ETCD_OP_RANGE:
        if (get_i64(o, "count", &r->count) || get_bool(o, "more", &r->more))
            return perr(c, TS_ETCD_E_PROTOCOL, "range count/more malformed");
        return parse_kvs(c, cJSON_GetObjectItemCaseSensitive(o, "kvs"), &r->kvs, &r->nkvs);
    case TS_ETCD_OP_PUT: {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prev_kv");
        if (!p || cJSON_IsNull(p)) return 0;
        r->kvs = calloc(1, sizeof(*r->kvs));
        if (!r->kvs) return perr(c, TS_ETCD_E_NOMEM, "out of memory");
        if (parse_kv(c, p, &r->kvs[0])) {
            free(r->kvs);
            r->kvs = NULL;
            return -1;
        }
        r->nkvs = 1;
        return 0;
    }
    case TS_ETCD_OP_DELETE:
        if (get_i64(o, "deleted", &r->count))
            return perr(c, TS_ETCD_E_PROTOCOL, "deleted is not an int64");
        return parse_kvs(c, cJSON_GetObjectItemCaseSensitive(o, "prev_kvs"), &r->kvs, &r->nkvs);
    }
    return perr(c, TS_ETCD_E_INVAL, "unknown response type");
}

static cJSON *parse_root(pctx *c, const char *body, size_t len)
{
    if (!body || !len) {
        perr(c, TS_ETCD_E_PROTOCOL, "empty body");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) {
        perr(c, TS_ETCD_E_PROTOCOL, "not valid JSON");
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        perr(c, TS_ETCD_E_PROTOCOL, "not a JSON object");
        return NULL;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "error")) {
        cJSON_Delete(root);
        perr(c, TS_ETCD_E_PROTOCOL, "an error object where a result was expected");
        return NULL;
    }
    return root;
}

ts_etcd_status ts_etcd_json_parse_resp(ts_etcd_op_type type, const char *body, size_t len,
                                       size_t max_value, ts_etcd_resp *out, char *errstr,
                                       size_t errlen)
{
    pctx c = {max_value, errstr, errlen, TS_ETCD_OK};
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_root(&c, body, len);
    if (!root) goto fail;
    if (parse_resp_obj(&c, type, root, out)) goto fail;
    cJSON_Delete(root);
    return TS_ETCD_OK;
fail:
    cJSON_Delete(root);
    ts_etcd_resp_free(out);
    return c.st ? c.st : TS_ETCD_E_PROTOCOL;
}

void ts_etcd_txn_result_free(ts_etcd_txn_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nresponses; i++) ts_etcd_resp_free(&r->responses[i]);
    free(r->responses);
    memset(r, 0, sizeof(*r));
}

ts_etcd_status ts_etcd_json_parse_txn(const char *body, size_t len, size_t max_value,
                                      ts_etcd_txn_result *out, char *errstr, size_t errlen)
{
    static const char *const names[] = {"response_range", "response_put", "response_delete_range"};
    pctx c = {max_value, errstr, errlen, TS_ETCD_OK};
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_root(&c, body, len);
    if (!root) goto fail;
    if (header_revision(&c, root, &out->revision)) goto fail;
    if (get_bool(root, "succeeded", &out->succeeded)) {
        perr(&c, TS_ETCD_E_PROTOCOL, "succeeded is not a boolean");
        goto fail;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "responses");
    if (arr && !cJSON_IsNull(arr)) {
        if (!cJSON_IsArray(arr)) {
            perr(&c, TS_ETCD_E_PROTOCOL, "responses is not an array");
            goto fail;
        }
        size_t cnt = (size_t)cJSON_GetArraySize(arr);
        if (cnt) {
            out->responses = calloc(cnt, sizeof(*out->responses));
            if (!out->responses) {
                perr(&c, TS_ETCD_E_NOMEM, "out of memory");
                goto fail;
            }
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, arr)
        {
            if (out->nresponses >= cnt || !cJSON_IsObject(e)) {
                perr(&c, TS_ETCD_E_PROTOCOL, "a txn response is not an object");
                goto fail;
            }
            int found = -1;
            const cJSON *body_o = NULL;
            for (int t = 0; t < 3; t++) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, names[t]);
                if (f) {
                    if (found >= 0) found = 99;
                    else found = t;
                    body_o = f;
                }
            }
            if (found < 0 || found > 2) {
                perr(&c, TS_ETCD_E_PROTOCOL, "a txn response names no single op");
                goto fail;
            }
            if (parse_resp_obj(&c, (ts_etcd_op_type)found, body_o,
                               &out->responses[out->nresponses]))
                goto fail;
            out->nresponses++;
        }
    }
    cJSON_Delete(root);
    return TS_ETCD_OK;
fail:
    cJSON_Delete(root);
    ts_etcd_txn_result_free(out);
    return c.st ? c.st : TS_ETCD_E_PROTOCOL;
}

ts_etcd_status ts_etcd_json_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl,
                                        int64_t *revision, char *errstr, size_t errlen)
{
    pctx c = {0, errstr, errlen, TS_ETCD_OK};
    int64_t xid = 0, xttl = 0, xrev = 0;
    cJSON *root = parse_root(&c, body, len);
    if (!root) goto fail;
    const cJSON *o = root, *res = cJSON_GetObjectItemCaseSensitive(root, "result");
    if (res) {
        if (!cJSON_IsObject(res)) {
            perr(&c, TS_ETCD_E_PROTOCOL, "result is not an object");
            goto fail;
        }
        o = res;
    }
    if (header_revision(&c, o, &xrev)) goto fail;
    if (get_i64(o, "ID", &xid) || get_i64(o, "TTL", &xttl)) {
        perr(&c, TS_ETCD_E_PROTOCOL, "lease ID/TTL is not an int64");
        goto fail;
    }
    cJSON_Delete(root);
    if (id) *id = xid;
    if (ttl) *ttl = xttl;
    if (revision) *revision = xrev;
    return TS_ETCD_OK;
fail:
    cJSON_Delete(root);
    return c.st ? c.st : TS_ETCD_E_PROTOCOL;
}

int ts_etcd_json_error(const char *body, size_t len, int *grpc_code, char *msg, size_t msglen)
{
    *grpc_code = 0;
    if (msg && msglen) msg[0] = '\0';
    if (!body || !len) return 0;
    cJSON *root = cJSON_ParseWithLength(body, len);
    int found = 0;
    if (!root || !cJSON_IsObject(root)) goto out;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *src = root, *m = NULL, *code = NULL;
    if (cJSON_IsObject(e)) { /* streamed: {"error":{"grpc_code":..,"message":..}} */
        src = e;
        code = cJSON_GetObjectItemCaseSensitive(e, "grpc_code");
        m = cJSON_GetObjectItemCaseSensitive(e, "message");
    } else if (cJSON_IsString(e)) {
        code = cJSON_GetObjectItemCaseSensitive(root, "code");
        m = cJSON_GetObjectItemCaseSensitive(root, "message");
        if (!cJSON_IsString(m)) m = e;
    } else {
        goto out;
    }
    (void)src;
    found = 1;
    if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble <= 1000)
        *grpc_code = (int)code->valuedouble;
    if (cJSON_IsString(m) && m->valuestring && msg && msglen)
        snprintf(msg, msglen, "%s", m->valuestring);
out:
    cJSON_Delete(root);
    return found;
}

/* ------------------------------------------------------------------------
 * Watch lines
 * ------------------------------------------------------------------------ */
void ts_etcd_watch_msg_free(ts_etcd_watch_msg *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nevents; i++) kv_free(&m->events[i].kv);
    free(m->events);
    memset(m, 0, sizeof(*m));
}

ts_etcd_status ts_etcd_json_parse_watch(const char *line, size_t len, size_t max_value,
                                        ts_etcd_watch_msg *out, char *errstr, size_t errlen)
{
    pctx c = {max_value, errstr, errlen, TS_ETCD_OK};
    memset(out, 0, sizeof(*out));
    cJSON *root = NULL;
    if (ts_etcd_json_error(line, len, &out->grpc_code, out->cancel_reason,
                           sizeof(out->cancel_reason))) {
        out->is_error = 1;
        return TS_ETCD_OK;
    }
    root = parse_root(&c, line, len);
    if (!root) goto fail;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "result");
    if (!cJSON_IsObject(o)) {
        perr(&c, TS_ETCD_E_PROTOCOL, "watch line without a result object");
        goto fail;
    }
    if (header_revision(&c, o, &out->header_revision)) goto fail;
    if (get_bool(o, "created", &out->created) || get_bool(o, "canceled", &out->canceled) ||
        get_i64(o, "compact_revision", &out->compact_revision)) {
        perr(&c, TS_ETCD_E_PROTOCOL, "watch created/canceled/compact_revision malformed");
        goto fail;
    }
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "cancel_reason");
    if (cJSON_IsString(reason) && reason->valuestring)
        snprintf(out->cancel_reason, sizeof(out->cancel_reason), "%s", reason->valuestring);
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(o, "events");
    if (evs && !cJSON_IsNull(evs)) {
        if (!cJSON_IsArray(evs)) {
            perr(&c, TS_ETCD_E_PROTOCOL, "events is not an array");
            goto fail;
        }
        size_t cnt = (size_t)cJSON_GetArraySize(evs);
        if (cnt) {
            out->events = calloc(cnt, sizeof(*out->events));
            if (!out->events) {
                perr(&c, TS_ETCD_E_NOMEM, "out of memory");
                goto fail;
            }
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, evs)
        {
            if (out->nevents >= cnt || !cJSON_IsObject(e)) {
                perr(&c, TS_ETCD_E_PROTOCOL, "an event is not an object");
                goto fail;
            }
            ts_etcd_event *ev = &out->events[out->nevents];
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
            if (!t || cJSON_IsNull(t) || (cJSON_IsString(t) && !strcmp(t->valuestring, "PUT")) ||
                (cJSON_IsNumber(t) && t->valuedouble == 0))
                ev->type = TS_ETCD_EV_PUT;
            else if ((cJSON_IsString(t) && !strcmp(t->valuestring, "DELETE")) ||
                     (cJSON_IsNumber(t) && t->valuedouble == 1))
                ev->type = TS_ETCD_EV_DELETE;
            else {
                perr(&c, TS_ETCD_E_PROTOCOL, "an event has an unknown type");
                goto fail;
            }
            const cJSON *kv = cJSON_GetObjectItemCaseSensitive(e, "kv");
            if (!kv) {
                perr(&c, TS_ETCD_E_PROTOCOL, "an event without a kv");
                goto fail;
            }
            if (parse_kv(&c, kv, &ev->kv)) goto fail;
            out->nevents++;
        }
    }
    cJSON_Delete(root);
    return TS_ETCD_OK;
fail:
    cJSON_Delete(root);
    ts_etcd_watch_msg_free(out);
    return c.st ? c.st : TS_ETCD_E_PROTOCOL;
}

/* ------------------------------------------------------------------------
 * Line splitter
 * ------------------------------------------------------------------------ */
void ts_etcd_lines_init(ts_etcd_lines *l, size_t max)
{
    memset(l, 0, sizeof(*l));
    l->max = max;
}

void ts_etcd_lines_reset(ts_etcd_lines *l)
{
    l->len = 0;
    l->overflow = 0;
}

void ts_etcd_lines_free(ts_etcd_lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof(*l));
}

static int lines_append(ts_etcd_lines *l, const char *p, size_t n)
{
    if (n > l->max - l->len) {
        l->overflow = 1;
        return -1;
    }
    if (l->len + n > l->cap) {
        size_t nc = l->cap ? l->cap : 4096;
        while (nc < l->len + n) nc *= 2;
        if (nc > l->max) nc = l->max;
        char *b = realloc(l->buf, nc);
        if (!b) return -1;
        l->buf = b;
        l->cap = nc;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
    return 0;
}

int ts_etcd_lines_feed(ts_etcd_lines *l, const char *p, size_t n,
                       int (*on_line)(void *arg, const char *line, size_t len), void *arg)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (lines_append(l, p, take)) return -1;
        if (!nl) break;
        size_t ll = l->len;
        while (ll && l->buf[ll - 1] == '\r') ll--;
        l->len = 0;
        if (ll) {
            int rc = on_line(arg, l->buf, ll);
            if (rc) return rc;
        }
        p = nl + 1;
        n -= take + 1;
    }
    return 0;
}
