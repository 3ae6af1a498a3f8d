/*
 * s3_writer.c — the streaming writer: one PUT, or a multipart upload whose
 * memory is bounded by part size x parallelism.
 *
 * The writer fills one part buffer. An object that fits in one part is a
 * single PUT at commit. Once a full buffer is followed by more bytes, a
 * multipart upload starts: each full buffer goes to its own detached part
 * thread (UploadPart with a signed payload hash, hashed once whatever the
 * retries; Content-MD5 only with s3.content.md5), while the
 * writer fills the next one. Buffers come from a per-writer budget of
 * exactly s3.multipart.parallelism buffers, the one being filled included:
 * when all are in use, write() waits for a part to finish. Commit sends the
 * last part, waits for all, completes (RGW answers with an empty ETag,
 * which is fine) and checks the object's size with a HEAD; any failure
 * aborts the upload so nothing becomes visible.
 *
 * Threads: write/commit/abort run on the caller's thread (one at a time,
 * as objstore.h requires); part threads touch only the fields under w->mu.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "s3_internal.h"

/* ------------------------------------------------------------------------
 * Streaming writer: one PUT, or a multipart upload with bounded memory
 * ------------------------------------------------------------------------ */
typedef struct s3_writer {
    ts_objstore_writer base;
    s3_store *s;
    char key[TS_S3_KEY_MAX + 1];
    uint8_t *cur; /* part being filled (NULL until the first write) */
    size_t cur_len;
    uint64_t total;
    int nparts; /* parts submitted */
    char upload_id[1024];

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    uint8_t *free_bufs[64];
    int nfree;
    int nalloc;        /* buffers allocated (<= parallelism) */
    int inflight;      /* part threads running */
    char (*etags)[80]; /* ETag of part i+1 */
    int etags_cap;
    ts_status fail_st;
    char fail_msg[512];
} s3_writer;

typedef struct part_job {
    s3_writer *w;
    int partno;
    uint8_t *buf;
    size_t len;
} part_job;

static void buf_account(s3_store *s, int64_t delta)
{
    uint64_t now = atomic_fetch_add(&s->part_bytes_now, (uint64_t)delta) + (uint64_t)delta;
    uint64_t peak = atomic_load(&s->part_bytes_peak);
    while (now > peak && !atomic_compare_exchange_weak(&s->part_bytes_peak, &peak, now)) {
    }
}

/* Writer thread; takes w->mu. Waits for a free buffer within the budget. */
static uint8_t *wbuf_get(s3_writer *w)
{
    uint8_t *b = NULL;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->nfree) {
            b = w->free_bufs[--w->nfree];
            break;
        }
        if (w->nalloc < w->s->parallelism) {
            w->nalloc++;
            pthread_mutex_unlock(&w->mu);
            b = malloc(w->s->part_bytes);
            pthread_mutex_lock(&w->mu);
            if (!b)
                w->nalloc--;
            else
                buf_account(w->s, (int64_t)w->s->part_bytes);
            break;
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return b;
}

/* Any thread; caller holds w->mu. */
static void wbuf_put_locked(s3_writer *w, uint8_t *b)
{
    if (!b) return;
    w->free_bufs[w->nfree++] = b;
    pthread_cond_broadcast(&w->cv);
}

static void wbuf_free_all(s3_writer *w)
{
    for (int i = 0; i < w->nfree; i++) {
        free(w->free_bufs[i]);
        buf_account(w->s, -(int64_t)w->s->part_bytes);
    }
    w->nfree = 0;
    w->nalloc = 0;
}

static ts_status check_part(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                            char *errstr, size_t errlen)
{
    (void)arg;
    if (!rs->etag[0])
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "UploadPart %s: no ETag in the answer", name);
    return TS_OK;
}

/* Part thread: uploads one part, records its ETag or the first failure. */
static void *part_main(void *arg)
{
    part_job *j = arg;
    s3_writer *w = j->w;
    s3_store *s = w->s;
    char pn[16], err[512] = "";
    snprintf(pn, sizeof(pn), "%d", j->partno);
    ts_s3_kv q[2] = {{"partNumber", pn}, {"uploadId", w->upload_id}};
    s3_req rq = {.method = "PUT",
                 .key = w->key,
                 .query = q,
                 .nquery = 2,
                 .body = j->buf,
                 .body_len = j->len,
                 .what = "UploadPart",
                 .check = check_part};
    s3_resp rs;
    s3_resp_init(&rs, S3_ERR_BODY_MAX);
    ts_retry r;
    s3_retry_init(s, &r);
    pthread_mutex_lock(&w->mu);
    int skip = w->fail_st != TS_OK;
    pthread_mutex_unlock(&w->mu);
    ts_status st = skip ? TS_E_CLOSED : s3_do(s, &rq, &rs, &r, err, sizeof(err));
    pthread_mutex_lock(&w->mu);
    if (st == TS_OK) {
        snprintf(w->etags[j->partno - 1], sizeof(w->etags[0]), "%s", rs.etag);
    } else if (w->fail_st == TS_OK) {
        w->fail_st = st;
        snprintf(w->fail_msg, sizeof(w->fail_msg), "part %d: %s", j->partno, err);
    }
    wbuf_put_locked(w, j->buf);
    w->inflight--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    s3_resp_free(&rs);
    free(j);
    return NULL;
}

static ts_status wr_fail(s3_writer *w, char *errstr, size_t errlen)
{
    pthread_mutex_lock(&w->mu);
    ts_status st = w->fail_st;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", w->fail_msg);
    pthread_mutex_unlock(&w->mu);
    if (st == TS_OK) return TS_OK;
    char name[TS_S3_KEY_MAX + 300];
    s3_obj_name(w->s, w->key, name, sizeof(name));
    return ts_err_set(errstr, errlen, st, "multipart upload of %s: %s", name, msg);
}

static ts_status check_create(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                              char *errstr, size_t errlen)
{
    char id[1024];
    (void)arg;
    if (ts_s3_xml_parse_upload_id((const char *)rs->body.data, rs->body.len, id, sizeof(id)))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "CreateMultipartUpload %s: no UploadId in the answer", name);
    return TS_OK;
}

static ts_status mp_create(s3_writer *w, char *errstr, size_t errlen)
{
    ts_s3_kv q[1] = {{"uploads", ""}};
    s3_req rq = {.method = "POST",
                 .key = w->key,
                 .query = q,
                 .nquery = 1,
                 .what = "CreateMultipartUpload",
                 .check = check_create};
    s3_resp rs;
    ts_status st = s3_do_fresh(w->s, &rq, &rs, S3_XML_MAX_BYTES, errstr, errlen);
    if (!st && ts_s3_xml_parse_upload_id((const char *)rs.body.data, rs.body.len, w->upload_id,
                                         sizeof(w->upload_id)))
        st = ts_err_set(errstr, errlen, TS_E_REMOTE,
                        "CreateMultipartUpload %s: no UploadId in the answer", w->key);
    s3_resp_free(&rs);
    return st;
}

/* Writer thread: hands w->cur to a part thread (waits while `parallelism`
 * parts are in flight). */
static ts_status submit_part(s3_writer *w, char *errstr, size_t errlen)
{
    ts_status st;
    if (!w->upload_id[0] && (st = mp_create(w, errstr, errlen))) return st;
    if (w->nparts >= S3_MAX_PARTS)
        return ts_err_set(errstr, errlen, TS_E_MSG_TOO_LARGE,
                          "%s: object needs more than %d parts; raise s3.multipart.part.bytes",
                          w->key, S3_MAX_PARTS);
    if ((st = wr_fail(w, errstr, errlen))) return st;
    part_job *j = malloc(sizeof(*j));
    if (!j) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    pthread_mutex_lock(&w->mu);
    if (w->nparts >= w->etags_cap) {
        int nc = w->etags_cap ? w->etags_cap * 2 : 64;
        if (nc > S3_MAX_PARTS) nc = S3_MAX_PARTS;
        void *ne = realloc(w->etags, (size_t)nc * sizeof(w->etags[0]));
        if (!ne) {
            pthread_mutex_unlock(&w->mu);
            free(j);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        w->etags = ne;
        w->etags_cap = nc;
    }
    w->nparts++;
    w->etags[w->nparts - 1][0] = '\0';
    *j = (part_job){w, w->nparts, w->cur, w->cur_len};
    w->inflight++;
    pthread_mutex_unlock(&w->mu);
    w->cur = NULL;
    w->cur_len = 0;
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, part_main, j);
    pthread_attr_destroy(&at);
    if (rc) {
        pthread_mutex_lock(&w->mu);
        w->inflight--;
        wbuf_put_locked(w, j->buf);
        if (w->fail_st == TS_OK) {
            w->fail_st = TS_E_NOMEM;
            snprintf(w->fail_msg, sizeof(w->fail_msg), "cannot start a part thread: %s",
                     strerror(rc));
        }
        pthread_mutex_unlock(&w->mu);
        free(j);
        return wr_fail(w, errstr, errlen);
    }
    return TS_OK;
}

static void wait_idle(s3_writer *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void writer_free(s3_writer *w)
{
    wait_idle(w);
    pthread_mutex_lock(&w->mu);
    wbuf_put_locked(w, w->cur);
    w->cur = NULL;
    wbuf_free_all(w);
    pthread_mutex_unlock(&w->mu);
    free(w->etags);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

static ts_status wr_write(ts_objstore_writer *base, const void *data, size_t len, char *errstr,
                          size_t errlen)
{
    s3_writer *w = (s3_writer *)base;
    const uint8_t *p = data;
    ts_status st;
    while (len) {
        if (!w->cur) {
            if ((st = wr_fail(w, errstr, errlen))) return st;
            if (!(w->cur = wbuf_get(w)))
                return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        if (w->cur_len == w->s->part_bytes) { /* full, and more follows: ship it */
            if ((st = submit_part(w, errstr, errlen))) return st;
            continue;
        }
        size_t n = w->s->part_bytes - w->cur_len;
        if (n > len) n = len;
        memcpy(w->cur + w->cur_len, p, n);
        w->cur_len += n;
        w->total += n;
        p += n;
        len -= n;
    }
    return TS_OK;
}

static void mp_abort(s3_writer *w)
{
    if (!w->upload_id[0]) return;
    wait_idle(w);
    ts_s3_kv q[1] = {{"uploadId", w->upload_id}};
    s3_req rq = {
        .method = "DELETE", .key = w->key, .query = q, .nquery = 1, .what = "AbortMultipartUpload"};
    s3_resp rs;
    s3_resp_init(&rs, S3_ERR_BODY_MAX);
    ts_retry r;
    ts_retry_init(&r, w->s->op_timeout_ms < 30000 ? w->s->op_timeout_ms : 30000, S3_RETRY_BASE_MS,
                  S3_RETRY_MAX_MS, 0);
    char err[512];
    ts_status st = s3_do(w->s, &rq, &rs, &r, err, sizeof(err));
    if (st && st != TS_E_NOT_FOUND)
        ts_log_warn(S3_MOD,
                    "could not abort multipart upload of %s (the bucket's lifecycle rule "
                    "for incomplete uploads will reclaim it): %s",
                    w->key, err);
    s3_resp_free(&rs);
}

static void wr_abort(ts_objstore_writer *base)
{
    s3_writer *w = (s3_writer *)base;
    if (!w) return;
    mp_abort(w);
    writer_free(w);
}

static ts_status check_complete(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                                char *errstr, size_t errlen)
{
    (void)arg;
    /* A 200 may still carry an <Error> (the store failed while streaming). */
    if (ts_s3_xml_parse_error((const char *)rs->body.data, rs->body.len, rs->err_code,
                              sizeof(rs->err_code), rs->err_msg, sizeof(rs->err_msg))) {
        ts_status st = TS_E_REMOTE_RETRIABLE; /* InternalError, SlowDown… */
        if (!strcmp(rs->err_code, "NoSuchUpload"))
            st = TS_E_NOT_FOUND;
        else if (!strcmp(rs->err_code, "InvalidPart") ||
                 !strcmp(rs->err_code, "InvalidPartOrder") ||
                 !strcmp(rs->err_code, "EntityTooSmall") || !strcmp(rs->err_code, "AccessDenied"))
            st = TS_E_REMOTE;
        return ts_err_set(errstr, errlen, st, "CompleteMultipartUpload %s: %s %s", name,
                          rs->err_code, rs->err_msg);
    }
    if (ts_s3_xml_parse_complete((const char *)rs->body.data, rs->body.len))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "CompleteMultipartUpload %s: unreadable answer", name);
    return TS_OK;
}

static ts_status mp_complete(s3_writer *w, char *errstr, size_t errlen)
{
    ts_buf body;
    ts_buf_init(&body, (size_t)S3_MAX_PARTS * 160 + 256);
    ts_status st = ts_buf_printf(&body, "<CompleteMultipartUpload>");
    for (int i = 0; i < w->nparts && !st; i++)
        st = ts_buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>",
                           i + 1, w->etags[i]);
    if (!st) st = ts_buf_printf(&body, "</CompleteMultipartUpload>");
    if (st) {
        ts_buf_free(&body);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    ts_s3_kv q[1] = {{"uploadId", w->upload_id}};
    s3_req rq = {.method = "POST",
                 .key = w->key,
                 .query = q,
                 .nquery = 1,
                 .body = body.data,
                 .body_len = body.len,
                 .what = "CompleteMultipartUpload",
                 .check = check_complete};
    s3_resp rs;
    s3_resp_init(&rs, S3_XML_MAX_BYTES);
    ts_retry r;
    s3_retry_init(w->s, &r);
    st = s3_do(w->s, &rq, &rs, &r, errstr, errlen);
    int unanswered = rs.unanswered;
    s3_resp_free(&rs);
    ts_buf_free(&body);
    /* The object's size must be what we wrote; this also settles a retried
     * complete whose first answer was lost (NoSuchUpload the second time). */
    if (st == TS_OK || (st == TS_E_NOT_FOUND && unanswered)) {
        uint64_t size = 0;
        char e2[512];
        ts_status hs = s3_head_in(w->s, w->key, &size, NULL, 0, &r, e2, sizeof(e2));
        if (hs == TS_OK && size == w->total) return TS_OK;
        if (st == TS_OK)
            return ts_err_set(errstr, errlen, hs ? hs : TS_E_REMOTE,
                              "CompleteMultipartUpload %s: object size %llu after completing, "
                              "wrote %llu%s%s",
                              w->key, (unsigned long long)size, (unsigned long long)w->total,
                              hs ? ": " : "", hs ? e2 : "");
    }
    return st;
}

static ts_status wr_commit(ts_objstore_writer *base, char *errstr, size_t errlen)
{
    s3_writer *w = (s3_writer *)base;
    ts_status st;
    if (!w->upload_id[0]) { /* fits in one part: one PUT */
        ts_retry r;
        s3_retry_init(w->s, &r);
        st = s3_put_in(w->s, w->key, w->cur, w->cur_len, 0, &r, errstr, errlen);
        writer_free(w);
        return st;
    }
    /* After a failed write the writer may hold no buffer: never send an
     * empty last part, refuse instead (the caller should have aborted). */
    st = w->cur ? submit_part(w, errstr, errlen)
                : ts_err_set(errstr, errlen, TS_E_INVAL,
                             "commit of %s after a failed write; the upload is aborted", w->key);
    wait_idle(w);
    if (!st) st = wr_fail(w, errstr, errlen);
    if (!st) st = mp_complete(w, errstr, errlen);
    if (st) mp_abort(w);
    writer_free(w);
    return st;
}

static const ts_objstore_writer_ops g_writer_ops = {wr_write, wr_commit, wr_abort};

ts_status s3_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out, char *errstr,
                         size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = s3_check_key(s, key, errstr, errlen);
    if (st) return st;
    s3_writer *w = calloc(1, sizeof(*w));
    if (!w) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    w->base.ops = &g_writer_ops;
    w->s = s;
    snprintf(w->key, sizeof(w->key), "%s", key);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    *out = &w->base;
    return TS_OK;
}
