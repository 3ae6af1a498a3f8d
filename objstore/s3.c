/*
 * s3.c — the S3 backend's ts_objstore operations (AWS S3, MinIO, Ceph RGW)
 * and ts_objstore_s3_open.
 *
 * Each operation is one or a few requests run by s3_do() (s3_http.c) under
 * one retry budget; the streaming writer lives in s3_writer.c. What is
 * specific to each operation is here:
 *  - PUT sends a signed payload hash (SHA-256, checked by the store), and
 *    Content-MD5 too when s3.content.md5 is on. With
 *    TS_PUT_IF_NONE_MATCH it sends `If-None-Match: *` (412 = TS_E_EXISTS).
 *    When a retry meets 412 after an attempt whose answer was lost, a HEAD
 *    whose ETag equals our MD5 proves the object is ours: success. A store
 *    that answers 501 gets HEAD-then-PUT instead (not atomic; logged once).
 *  - GET checks what arrives: Content-Length and Content-Range must match
 *    the bytes received and the range asked for, and a whole-object GET of
 *    a single-PUT object must match its MD5 ETag. A mismatch is retried,
 *    never returned. A range starting at or past the end is TS_E_INVAL, as
 *    in the fs backend (the whole of an empty object is 0 bytes).
 *  - DeleteObjects in batches of 1000 (Quiet mode); keys it reports as
 *    failed are deleted one by one; a store without DeleteObjects gets
 *    single deletes from then on.
 *  - ListObjectsV2 pages through continuation tokens; a page that does not
 *    parse is refetched.
 *
 * Threads: every function may run on any thread (one store is shared).
 */
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/config_table.h"
#include "common/err.h"
#include "common/log.h"
#include "s3_internal.h"

/* ------------------------------------------------------------------------
 * Global init
 * ------------------------------------------------------------------------ */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void do_global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

ts_status ts_objstore_s3_global_init(void)
{
    pthread_once(&g_once, do_global_init);
    return g_init_rc == CURLE_OK ? TS_OK : TS_E_UNSUPPORTED;
}

ts_status s3_check_key(const s3_store *s, const char *key, char *errstr, size_t errlen)
{
    if (!key || !*key)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "empty object key in %s", s->base.url);
    if (strlen(s->addr.prefix) + strlen(key) > TS_S3_KEY_MAX)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "object key '%.80s…' longer than %d bytes",
                          key, TS_S3_KEY_MAX);
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * HEAD, PUT, GET, DELETE
 * ------------------------------------------------------------------------ */
ts_status s3_head_in(s3_store *s, const char *key, uint64_t *size, char *etag, size_t etaglen,
                     ts_retry *r, char *errstr, size_t errlen)
{
    s3_req rq = {.method = "HEAD", .key = key, .what = "HEAD"};
    s3_resp rs;
    s3_resp_init(&rs, S3_ERR_BODY_MAX);
    ts_status st = s3_do(s, &rq, &rs, r, errstr, errlen);
    if (!st) {
        if (rs.content_length < 0) {
            char name[TS_S3_KEY_MAX + 300];
            s3_obj_name(s, key, name, sizeof(name));
            st = ts_err_set(errstr, errlen, TS_E_REMOTE, "HEAD %s: no Content-Length", name);
        } else {
            if (size) *size = (uint64_t)rs.content_length;
            if (etag) snprintf(etag, etaglen, "%s", rs.etag);
        }
    }
    s3_resp_free(&rs);
    return st;
}

static ts_status s3_head(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                         size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = s3_check_key(s, key, errstr, errlen);
    if (st) return st;
    ts_retry r;
    s3_retry_init(s, &r);
    return s3_head_in(s, key, size, NULL, 0, &r, errstr, errlen);
}

/* Plain or conditional single PUT of a whole body. */
ts_status s3_put_in(s3_store *s, const char *key, const void *data, size_t len, int if_none,
                    ts_retry *r, char *errstr, size_t errlen)
{
    char name[TS_S3_KEY_MAX + 300];
    s3_obj_name(s, key, name, sizeof(name));
    if (if_none && atomic_load(&s->inm_unsupported)) {
        /* Fallback for stores without conditional PUT: HEAD, then PUT. Not
         * atomic: a concurrent writer of the same key can still win. */
        ts_status st = s3_head_in(s, key, NULL, NULL, 0, r, errstr, errlen);
        if (st == TS_OK)
            return ts_err_set(errstr, errlen, TS_E_EXISTS, "PUT %s: the object already exists",
                              name);
        if (st != TS_E_NOT_FOUND) return st;
        if_none = 0;
    }
    ts_s3_kv hdr[1] = {{"if-none-match", "*"}};
    s3_req rq = {.method = "PUT",
                 .key = key,
                 .hdrs = hdr,
                 .nhdrs = if_none ? 1 : 0,
                 .body = data ? data : (const void *)"",
                 .body_len = len,
                 .what = "PUT"};
    s3_resp rs;
    s3_resp_init(&rs, S3_ERR_BODY_MAX);
    ts_status st = s3_do(s, &rq, &rs, r, errstr, errlen);
    int unanswered = rs.unanswered;
    s3_resp_free(&rs);
    if (st == TS_E_EXISTS && if_none && unanswered) {
        /* An earlier attempt may have landed without us hearing back: if
         * the object there is ours (same MD5), the PUT succeeded. */
        char md5hex[33], etag[128];
        ts_s3_md5(data ? data : (const void *)"", len, md5hex, NULL);
        char e2[512];
        if (s3_head_in(s, key, NULL, etag, sizeof(etag), r, e2, sizeof(e2)) == TS_OK &&
            !strcasecmp(etag, md5hex))
            return TS_OK;
        return ts_err_set(errstr, errlen, TS_E_EXISTS, "PUT %s: the object already exists", name);
    }
    if (st == TS_E_EXISTS)
        return ts_err_set(errstr, errlen, TS_E_EXISTS,
                          "PUT %s: the object already exists (If-None-Match)", name);
    if (st == TS_E_UNSUPPORTED && if_none) {
        if (!atomic_exchange(&s->inm_unsupported, 1))
            ts_log_warn(S3_MOD,
                        "%s does not support conditional PUT (If-None-Match: *); falling back to "
                        "HEAD then PUT, which is not atomic",
                        s->addr.endpoint);
        return s3_put_in(s, key, data, len, 1, r, errstr, errlen);
    }
    return st;
}

static ts_status s3_put(ts_objstore *os, const char *key, const void *data, size_t len,
                        unsigned flags, char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = s3_check_key(s, key, errstr, errlen);
    if (st) return st;
    ts_retry r;
    s3_retry_init(s, &r);
    return s3_put_in(s, key, data, len, (flags & TS_PUT_IF_NONE_MATCH) != 0, &r, errstr, errlen);
}

typedef struct get_ctx {
    uint64_t off, len; /* len TS_OBJSTORE_TO_END for the rest */
    int ranged;
} get_ctx;

static int is_md5_etag(const char *e)
{
    if (strlen(e) != 32) return 0;
    for (const char *c = e; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || (*c >= 'A' && *c <= 'F')))
            return 0;
    return 1;
}

/* Verifies a 2xx GET answer: never let a short or mismatched body through. */
static ts_status check_get(const s3_req *rq, const char *name, s3_resp *rs, void *arg, char *errstr,
                           size_t errlen)
{
    get_ctx *g = arg;
    size_t got = rs->body.len;
    if (rs->content_length >= 0 && (uint64_t)rs->content_length != got)
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "%s: truncated body: %zu of %lld bytes", name, got,
                          (long long)rs->content_length);
    if (rs->status == 206) {
        unsigned long long a, b, total;
        if (sscanf(rs->content_range, "bytes %llu-%llu/%llu", &a, &b, &total) != 3 || a > b ||
            b >= total)
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE, "%s: bad Content-Range '%s'",
                              name, rs->content_range);
        uint64_t want_end = g->len == TS_OBJSTORE_TO_END || g->len > total - g->off
                                ? total - 1
                                : g->off + g->len - 1;
        if (a != g->off || b != want_end || b - a + 1 != got)
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                              "%s: asked for bytes %llu-%llu, got %zu bytes as '%s'", name,
                              (unsigned long long)g->off, (unsigned long long)want_end, got,
                              rs->content_range);
        return TS_OK;
    }
    if (rs->status != 200)
        return ts_err_set(errstr, errlen, TS_E_REMOTE, "%s: unexpected HTTP %ld", name, rs->status);
    if (!g->ranged && is_md5_etag(rs->etag)) {
        char md5hex[33];
        ts_s3_md5(rs->body.data ? (const void *)rs->body.data : "", got, md5hex, NULL);
        if (strcasecmp(md5hex, rs->etag))
            return ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                              "%s: body MD5 %s does not match ETag %s", name, md5hex, rs->etag);
    }
    return TS_OK;
}

static ts_status s3_get(ts_objstore *os, const char *key, uint64_t offset, uint64_t len,
                        uint8_t **out, size_t *out_len, char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    *out = NULL;
    *out_len = 0;
    ts_status st = s3_check_key(s, key, errstr, errlen);
    if (st) return st;
    if (len == 0) {
        *out = malloc(1);
        return *out ? TS_OK : TS_E_NOMEM;
    }
    char range[80];
    get_ctx g = {offset, len, !(offset == 0 && len == TS_OBJSTORE_TO_END)};
    if (len == TS_OBJSTORE_TO_END)
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
    else if (len > UINT64_MAX - offset)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "GET %s: range overflows", key);
    else
        snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
                 (unsigned long long)(offset + len - 1));
    size_t cap =
        len == TS_OBJSTORE_TO_END || len > S3_GET_MAX_BYTES ? S3_GET_MAX_BYTES : (size_t)len;
    if (g.ranged && cap < S3_ERR_BODY_MAX) cap = S3_ERR_BODY_MAX; /* room for an error document */
    ts_s3_kv hdr[1] = {{"range", range}};
    s3_req rq = {.method = "GET",
                 .key = key,
                 .hdrs = hdr,
                 .nhdrs = g.ranged ? 1 : 0,
                 .what = g.ranged ? "GET range" : "GET",
                 .check = check_get,
                 .check_arg = &g};
    s3_resp rs;
    st = s3_do_fresh(s, &rq, &rs, cap, errstr, errlen);
    if (st == TS_E_OFFSET_OUT_OF_RANGE) { /* 416: the range starts at or past the end */
        s3_resp_free(&rs);
        if (offset > 0) { /* as the fs backend: a caller bug, not a short read */
            char name[TS_S3_KEY_MAX + 300];
            s3_obj_name(s, key, name, sizeof(name));
            return ts_err_set(errstr, errlen, TS_E_INVAL,
                              "GET %s: range start %llu is not within the object (range not "
                              "satisfiable)",
                              name, (unsigned long long)offset);
        }
        *out = malloc(1); /* bytes=0- of an empty object */
        return *out ? TS_OK : TS_E_NOMEM;
    }
    if (st) {
        s3_resp_free(&rs);
        return st;
    }
    if (rs.status == 200 && g.ranged) { /* a store that ignored Range */
        size_t total = rs.body.len;
        size_t a = offset < total ? (size_t)offset : total;
        size_t n = total - a;
        if (len != TS_OBJSTORE_TO_END && len < n) n = (size_t)len;
        memmove(rs.body.data, rs.body.data + a, n);
        rs.body.len = n;
    }
    if (!rs.body.data) {
        *out = malloc(1);
        if (!*out) return TS_E_NOMEM;
    } else {
        *out = ts_buf_steal(&rs.body, out_len);
    }
    s3_resp_free(&rs);
    return TS_OK;
}

static ts_status del_in(s3_store *s, const char *key, ts_retry *r, char *errstr, size_t errlen)
{
    s3_req rq = {.method = "DELETE", .key = key, .what = "DELETE"};
    s3_resp rs;
    s3_resp_init(&rs, S3_ERR_BODY_MAX);
    ts_status st = s3_do(s, &rq, &rs, r, errstr, errlen);
    s3_resp_free(&rs);
    return st == TS_E_NOT_FOUND ? TS_OK : st;
}

static ts_status s3_del(ts_objstore *os, const char *key, char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = s3_check_key(s, key, errstr, errlen);
    if (st) return st;
    ts_retry r;
    s3_retry_init(s, &r);
    return del_in(s, key, &r, errstr, errlen);
}

/* ------------------------------------------------------------------------
 * DeleteObjects
 * ------------------------------------------------------------------------ */
static ts_status xml_escape(ts_buf *b, const char *s)
{
    ts_status st = TS_OK;
    for (; *s && !st; s++) {
        switch (*s) {
        case '&': st = ts_buf_printf(b, "&amp;"); break;
        case '<': st = ts_buf_printf(b, "&lt;"); break;
        case '>': st = ts_buf_printf(b, "&gt;"); break;
        case '"': st = ts_buf_printf(b, "&quot;"); break;
        case '\'': st = ts_buf_printf(b, "&apos;"); break;
        default: st = ts_buf_append(b, s, 1);
        }
    }
    return st;
}

typedef struct del_errs {
    s3_store *s;
    const char *failed[S3_DELETE_BATCH]; /* keys (relative) to retry one by one */
    size_t nfailed;
    const char *const *batch;
    size_t nbatch;
} del_errs;

static void on_del_error(const char *key, const char *code, const char *msg, void *opaque)
{
    del_errs *d = opaque;
    if (!strcmp(code, "NoSuchKey")) return;
    size_t pl = strlen(d->s->addr.prefix);
    if (strncmp(key, d->s->addr.prefix, pl)) return;
    for (size_t i = 0; i < d->nbatch && d->nfailed < S3_DELETE_BATCH; i++)
        if (!strcmp(d->batch[i], key + pl)) {
            d->failed[d->nfailed++] = d->batch[i];
            break;
        }
    ts_log_debug(S3_MOD, "DeleteObjects: %s: %s %s", key, code, msg);
}

static void del_dry_cb(const char *key, const char *code, const char *msg, void *opaque)
{
    (void)key;
    (void)code;
    (void)msg;
    (void)opaque;
}

static ts_status check_delete(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                              char *errstr, size_t errlen)
{
    size_t ndel;
    (void)rq;
    (void)arg;
    if (ts_s3_xml_parse_delete((const char *)rs->body.data, rs->body.len, del_dry_cb, NULL, &ndel))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "DeleteObjects: unreadable DeleteResult (%zu bytes)", rs->body.len);
    return TS_OK;
}

static ts_status s3_del_many(ts_objstore *os, const char *const *keys, size_t n, char *errstr,
                             size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = TS_OK;
    for (size_t i = 0; i < n; i++)
        if ((st = s3_check_key(s, keys[i], errstr, errlen))) return st;
    for (size_t at = 0; at < n; at += S3_DELETE_BATCH) {
        size_t cnt = n - at < S3_DELETE_BATCH ? n - at : S3_DELETE_BATCH;
        ts_retry r;
        s3_retry_init(s, &r);
        if (atomic_load(&s->multi_del_unsupported)) goto singles;
        ts_buf body;
        ts_buf_init(&body, S3_XML_MAX_BYTES);
        st = ts_buf_printf(&body,
                           "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>");
        for (size_t i = 0; i < cnt && !st; i++) {
            st = ts_buf_printf(&body, "<Object><Key>");
            if (!st) st = xml_escape(&body, s->addr.prefix);
            if (!st) st = xml_escape(&body, keys[at + i]);
            if (!st) st = ts_buf_printf(&body, "</Key></Object>");
        }
        if (!st) st = ts_buf_printf(&body, "</Delete>");
        if (st) {
            ts_buf_free(&body);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "DeleteObjects: request too large");
        }
        ts_s3_kv q[1] = {{"delete", ""}};
        s3_req rq = {.method = "POST",
                     .query = q,
                     .nquery = 1,
                     .body = body.data,
                     .body_len = body.len,
                     .what = "DeleteObjects",
                     .check = check_delete};
        s3_resp rs;
        s3_resp_init(&rs, S3_XML_MAX_BYTES);
        st = s3_do(s, &rq, &rs, &r, errstr, errlen);
        ts_buf_free(&body);
        if (st == TS_E_UNSUPPORTED ||
            (st == TS_E_REMOTE && (rs.status == 405 || rs.status == 400))) {
            if (!atomic_exchange(&s->multi_del_unsupported, 1))
                ts_log_warn(S3_MOD, "%s does not support DeleteObjects (%s); deleting one by one",
                            s->addr.endpoint, errstr);
            s3_resp_free(&rs);
            goto singles;
        }
        if (st) {
            s3_resp_free(&rs);
            return st;
        }
        del_errs *d = calloc(1, sizeof(*d));
        if (!d) {
            s3_resp_free(&rs);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        d->s = s;
        d->batch = keys + at;
        d->nbatch = cnt;
        size_t ndel;
        st =
            ts_s3_xml_parse_delete((const char *)rs.body.data, rs.body.len, on_del_error, d, &ndel);
        s3_resp_free(&rs);
        if (st) {
            free(d);
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                              "DeleteObjects in %s: unreadable DeleteResult", s->base.url);
        }
        /* Keys the batch could not delete: one by one, with their own retries. */
        for (size_t i = 0; i < d->nfailed && !st; i++)
            st = del_in(s, d->failed[i], &r, errstr, errlen);
        free(d);
        if (st) return st;
        continue;
    singles:
        for (size_t i = 0; i < cnt; i++)
            if ((st = del_in(s, keys[at + i], &r, errstr, errlen))) return st;
    }
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * ListObjectsV2
 * ------------------------------------------------------------------------ */
typedef struct list_ctx {
    s3_store *s;
    int (*cb)(const char *key, uint64_t size, void *opaque);
    void *opaque;
} list_ctx;

static int list_cb(const char *key, uint64_t size, void *opaque)
{
    list_ctx *l = opaque;
    size_t pl = strlen(l->s->addr.prefix);
    if (strncmp(key, l->s->addr.prefix, pl)) return 0; /* not ours: the store ignored prefix */
    return l->cb(key + pl, size, l->opaque);
}

static int list_dry_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key;
    (void)size;
    (void)opaque;
    return 0;
}

/* A page that does not parse (cut short on the way) is retried. */
static ts_status check_list(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                            char *errstr, size_t errlen)
{
    int stopped, truncated;
    size_t nkeys;
    char next[4096];
    (void)arg;
    if (ts_s3_xml_parse_list((const char *)rs->body.data, rs->body.len, list_dry_cb, NULL, &stopped,
                             &truncated, next, sizeof(next), &nkeys))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "ListObjectsV2: unreadable result (%zu bytes)", rs->body.len);
    (void)rq;
    return TS_OK;
}

static ts_status s3_list(ts_objstore *os, const char *prefix,
                         int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                         char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    char full[TS_S3_KEY_MAX * 2 + 2], token[4096] = "", maxkeys[16];
    snprintf(full, sizeof(full), "%s%s", s->addr.prefix, prefix ? prefix : "");
    snprintf(maxkeys, sizeof(maxkeys), "%d", atomic_load(&s->list_page));
    list_ctx l = {s, cb, opaque};
    for (;;) {
        ts_s3_kv q[4] = {{"list-type", "2"},
                         {"prefix", full},
                         {"max-keys", maxkeys},
                         {"continuation-token", token}};
        s3_req rq = {.method = "GET",
                     .query = q,
                     .nquery = token[0] ? 4 : 3,
                     .what = "ListObjectsV2",
                     .check = check_list};
        s3_resp rs;
        ts_status st = s3_do_fresh(s, &rq, &rs, S3_XML_MAX_BYTES, errstr, errlen);
        if (st) {
            s3_resp_free(&rs);
            return st;
        }
        int stopped, truncated;
        size_t nkeys;
        char next[4096];
        st = ts_s3_xml_parse_list((const char *)rs.body.data, rs.body.len, list_cb, &l, &stopped,
                                  &truncated, next, sizeof(next), &nkeys);
        s3_resp_free(&rs);
        if (st)
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                              "ListObjectsV2 %s prefix '%s': unreadable result", s->base.url, full);
        if (stopped || !truncated) return TS_OK;
        if (!next[0] || !strcmp(next, token))
            return ts_err_set(errstr, errlen, TS_E_REMOTE,
                              "ListObjectsV2 %s: truncated page without a new continuation token",
                              s->base.url);
        memcpy(token, next, sizeof(token));
    }
}

/* ------------------------------------------------------------------------
 * Open / destroy
 * ------------------------------------------------------------------------ */
static void s3_destroy(ts_objstore *os)
{
    s3_store *s = (s3_store *)os;
    if (!s) return;
    s3_pool_destroy(s);
    ts_s3_provider_destroy(s->provider);
    ts_s3_creds_wipe(&s->creds);
    free(s);
}

static const ts_objstore_ops g_ops = {
    .scheme = "s3",
    .put = s3_put,
    .writer_open = s3_writer_open,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .del_many = s3_del_many,
    .list = s3_list,
    .destroy = s3_destroy,
};

int ts_objstore_is_s3(const ts_objstore *os) { return os && os->ops == &g_ops; }

void ts_objstore_s3_stats(ts_objstore *os, ts_s3_stats *out)
{
    s3_store *s = (s3_store *)os;
    out->requests = atomic_load(&s->n_requests);
    out->retries = atomic_load(&s->n_retries);
    out->part_buf_bytes = atomic_load(&s->part_bytes_now);
    out->part_buf_peak = atomic_load(&s->part_bytes_peak);
    out->bytes_sent = atomic_load(&s->n_sent);
    out->bytes_received = atomic_load(&s->n_received);
    out->bytes_hashed = atomic_load(&s->n_hashed);
}

void ts_objstore_s3_set_list_page(ts_objstore *os, int max_keys)
{
    if (max_keys < 1) max_keys = 1;
    if (max_keys > 1000) max_keys = 1000;
    atomic_store(&((s3_store *)os)->list_page, max_keys);
}

/* Test hook (s3.h): backoff of failed credential refreshes in stores
 * opened from now on; 0 = the provider's defaults. */
static _Atomic int64_t g_creds_backoff_base_ms, g_creds_backoff_max_ms;

void ts_objstore_s3_set_creds_backoff(int64_t base_ms, int64_t max_ms)
{
    atomic_store(&g_creds_backoff_base_ms, base_ms);
    atomic_store(&g_creds_backoff_max_ms, max_ms);
}

static void s3_creds_hooks_apply(ts_s3_provider_opts *po)
{
    po->backoff_base_ms = atomic_load(&g_creds_backoff_base_ms);
    po->backoff_max_ms = atomic_load(&g_creds_backoff_max_ms);
}

void ts_objstore_s3_creds_stats(ts_objstore *os, uint64_t *fetches, uint64_t *failures)
{
    ts_s3_provider_stats ps;
    ts_s3_provider_get_stats(((s3_store *)os)->provider, &ps);
    *fetches = ps.fetches;
    *failures = ps.failures;
}

ts_status ts_objstore_s3_open(const char *url, const ts_config *cfg, ts_objstore **out,
                              char *errstr, size_t errlen)
{
    *out = NULL;
    if (ts_objstore_s3_global_init())
        return ts_err_set(errstr, errlen, TS_E_UNSUPPORTED, "curl_global_init failed");
    s3_store *s = calloc(1, sizeof(*s));
    if (!s) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    s->base.ops = &g_ops;
    snprintf(s->base.url, sizeof(s->base.url), "%s", url);
    pthread_mutex_init(&s->pool_mu, NULL);
    atomic_store(&s->list_page, 1000);
    ts_status st = ts_s3_creds_resolve(cfg, NULL, NULL, &s->creds, errstr, errlen);
    if (!st)
        st = ts_s3_addr_init(&s->addr, url, s->creds.endpoint, s->creds.region,
                             ts_config_settings(cfg)->s3_path_style_access, errstr, errlen);
    if (!st) {
        ts_s3_provider_opts po = {
            .http_timeout_ms = ts_config_settings(cfg)->remote_storage_request_timeout_ms,
            .tls_verify = ts_config_settings(cfg)->s3_tls_verify,
        };
        s3_creds_hooks_apply(&po);
        st = ts_s3_provider_create(&s->creds, &po, &s->provider, errstr, errlen);
        ts_s3_creds_wipe(&s->creds); /* the provider has its own copy */
    }
    if (st) {
        s3_destroy(&s->base);
        return st;
    }
    s->tls_verify = ts_config_settings(cfg)->s3_tls_verify;
    s->req_timeout_ms = ts_config_settings(cfg)->remote_storage_request_timeout_ms;
    s->op_timeout_ms = ts_config_settings(cfg)->remote_storage_operation_timeout_ms;
    s->part_bytes = (size_t)ts_config_settings(cfg)->s3_multipart_part_bytes;
    s->parallelism = (int)ts_config_settings(cfg)->s3_multipart_parallelism;
    s->content_md5 = ts_config_settings(cfg)->s3_content_md5;
    if (!s->tls_verify && !strcmp(s->addr.scheme, "https"))
        ts_log_warn(S3_MOD, "TLS peer verification is off for %s (s3.tls.verify=false)",
                    s->addr.endpoint);
    ts_s3_keys *k = NULL;
    char kerr[64];
    if (ts_s3_provider_get(s->provider, &k, kerr, sizeof(kerr))) k = NULL;
    ts_log_info(S3_MOD, "%s: endpoint %s, region %s, %s-style, access key id %s (from %s)", url,
                s->addr.endpoint, s->creds.region, s->addr.path_style ? "path" : "virtual-hosted",
                k ? k->access_key_id : "?", s->creds.source);
    ts_s3_keys_release(k);
    *out = &s->base;
    return TS_OK;
}
