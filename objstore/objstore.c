/*
 * objstore.c — URL dispatch and the argument-checking front door of every
 * object store.
 *
 * Callers never reach a backend's ops directly: the public ts_objstore_*
 * wrappers validate keys and arguments once, here, so each backend (fs, s3,
 * the fault injector) may assume a well-formed key and report only its own
 * failures. Keeping the key rules in one place is also what keeps the
 * backends interchangeable: a key the fs store accepts is a key S3 accepts,
 * and one that would escape the fs root ("..") or alias another key ("a//b")
 * is refused everywhere, not only where it happens to be dangerous.
 *
 * Key rules: 1..1024 bytes, no leading '/', no empty segment (so no "//" and
 * no trailing '/'), no "." or ".." segment. A key longer than 1024 bytes is
 * refused before anything reads past the 1024th byte.
 */
#include "objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "objstore/faulty.h"

#define TS_OBJSTORE_KEY_MAX 1024

/* Checks one key; on failure writes why (quoting at most the first 64
 * bytes, a key may be huge) and returns TS_E_INVAL. `what` is the operation
 * for the message. */
static ts_status check_key(const char *key, const char *what, char *errstr, size_t errlen)
{
    if (!key)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore %s: key is NULL", what);
    size_t n = strnlen(key, TS_OBJSTORE_KEY_MAX + 1);
    if (n == 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore %s: key is empty", what);
    if (n > TS_OBJSTORE_KEY_MAX)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "objstore %s: key '%.64s...' is longer than %d bytes", what, key,
                          TS_OBJSTORE_KEY_MAX);
    if (key[0] == '/')
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "objstore %s: key '%.64s' starts with '/'; keys are relative to the "
                          "store's root",
                          what, key);
    const char *seg = key;
    for (;;) {
        const char *end = memchr(seg, '/', n - (size_t)(seg - key));
        size_t sl = end ? (size_t)(end - seg) : n - (size_t)(seg - key);
        if (sl == 0)
            return ts_err_set(errstr, errlen, TS_E_INVAL,
                              "objstore %s: key '%.64s' has an empty path segment ('//' or a "
                              "trailing '/')",
                              what, key);
        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            return ts_err_set(errstr, errlen, TS_E_INVAL,
                              "objstore %s: key '%.64s' has a '.' or '..' path segment", what,
                              key);
        if (!end) break;
        seg = end + 1;
    }
    return TS_OK;
}

/* A list prefix may be empty and may end inside a segment ("a/b" matches
 * "a/bc"), but every complete segment before the last '/' obeys the key
 * rules, so no prefix can walk out of the store. */
static ts_status check_prefix(const char *prefix, char *errstr, size_t errlen)
{
    size_t n = strnlen(prefix, TS_OBJSTORE_KEY_MAX + 1);
    if (n > TS_OBJSTORE_KEY_MAX)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "objstore list: prefix '%.64s...' is longer than %d bytes", prefix,
                          TS_OBJSTORE_KEY_MAX);
    const char *last = memrchr(prefix, '/', n);
    if (!last) return TS_OK;
    char dir[TS_OBJSTORE_KEY_MAX + 1];
    memcpy(dir, prefix, (size_t)(last - prefix));
    dir[last - prefix] = '\0';
    ts_status st = check_key(dir, "list", errstr, errlen);
    if (st != TS_OK)
        return ts_err_set(errstr, errlen, st,
                          "objstore list: prefix '%.64s' has an empty, '.' or '..' segment or "
                          "starts with '/'",
                          prefix);
    return TS_OK;
}

/* Counts one finished request of os; returns st so a wrapper can tail-call. */
static ts_status count(ts_objstore *os, ts_objstore_op op, ts_status st)
{
    ts_objstore_outcome o = st == TS_OK            ? TS_OBJSTORE_OUTCOME_OK
                            : st == TS_E_NOT_FOUND ? TS_OBJSTORE_OUTCOME_NOTFOUND
                                                   : TS_OBJSTORE_OUTCOME_ERROR;
    atomic_fetch_add_explicit(&os->ctr_requests[op][o], 1, memory_order_relaxed);
    return st;
}

void ts_objstore_counters_get(ts_objstore *os, ts_objstore_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (!os) return;
    for (int op = 0; op < TS_OBJSTORE_OP_COUNT; op++)
        for (int o = 0; o < TS_OBJSTORE_OUTCOME_COUNT; o++)
            out->requests[op][o] = atomic_load_explicit(&os->ctr_requests[op][o],
                                                        memory_order_relaxed);
    out->bytes_put = atomic_load_explicit(&os->ctr_bytes_put, memory_order_relaxed);
    out->bytes_got = atomic_load_explicit(&os->ctr_bytes_got, memory_order_relaxed);
}

ts_status ts_objstore_open(const char *url, const ts_config *cfg, ts_objstore **out,
                           char *errstr, size_t errlen)
{
    static const char allowed[] =
        "expected file:///absolute/dir, s3://bucket[/prefix] or faulty+<url>?<faults>";
    if (!out) return ts_err_set(errstr, errlen, TS_E_INVAL, "ts_objstore_open: out is NULL");
    *out = NULL;
    if (!url || !*url)
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "object store URL is empty: %s", allowed);
    if (strnlen(url, sizeof(((ts_objstore *)0)->url)) >= sizeof(((ts_objstore *)0)->url))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "object store URL '%.64s...' is longer than %zu bytes", url,
                          sizeof(((ts_objstore *)0)->url) - 1);

    if (!strncmp(url, "file://", 7)) {
        const char *path = url + 7;
        if (path[0] != '/')
            return ts_err_set(errstr, errlen, TS_E_CONFIG,
                              "object store URL '%s': a file URL needs an absolute path with no "
                              "host, as in file:///var/lib/tierstore/bucket",
                              url);
        if (strpbrk(path, "?#"))
            return ts_err_set(errstr, errlen, TS_E_CONFIG,
                              "object store URL '%s': a file URL takes no query or fragment "
                              "(fault options belong after faulty+<url>?)",
                              url);
        ts_status st = ts_objstore_fs_open(path, out, errstr, errlen);
        /* A path the fs store refuses is a configuration mistake here. */
        if (st == TS_E_INVAL) st = TS_E_CONFIG;
        if (st != TS_OK) return ts_err_prefix(errstr, errlen, st, "object store URL '%s'", url);
        return TS_OK;
    }
    if (!strncmp(url, "s3://", 5)) return ts_objstore_s3_open(url, cfg, out, errstr, errlen);
    if (!strncmp(url, "faulty+", 7)) {
        /* The inner URL ends at the first '?': everything after it is fault
         * options. Inner URLs therefore cannot carry a query of their own. */
        const char *inner_url = url + 7;
        const char *q = strchr(inner_url, '?');
        size_t il = q ? (size_t)(q - inner_url) : strlen(inner_url);
        char inner[sizeof(((ts_objstore *)0)->url)];
        memcpy(inner, inner_url, il);
        inner[il] = '\0';
        if (!strncmp(inner, "faulty+", 7))
            return ts_err_set(errstr, errlen, TS_E_CONFIG,
                              "object store URL '%s': faulty+ cannot be nested", url);
        ts_faulty_opts opts;
        ts_status st = ts_faulty_opts_parse(q ? q + 1 : "", &opts, errstr, errlen);
        if (st != TS_OK) return ts_err_prefix(errstr, errlen, st, "object store URL '%s'", url);
        ts_objstore *in = NULL;
        st = ts_objstore_open(inner, cfg, &in, errstr, errlen);
        if (st != TS_OK) return st;
        st = ts_objstore_faulty_wrap(in, 1, &opts, out, errstr, errlen);
        if (st != TS_OK) return st; /* wrap destroys an owned inner on failure */
        ts_strlcpy((*out)->url, url, sizeof((*out)->url)); /* fits: checked above */
        return TS_OK;
    }
    return ts_err_set(errstr, errlen, TS_E_CONFIG, "unsupported object store URL '%s': %s", url,
                      allowed);
}

void ts_objstore_destroy(ts_objstore *os)
{
    if (os) os->ops->destroy(os);
}

ts_status ts_objstore_put(ts_objstore *os, const char *key, const void *data, size_t len,
                          unsigned flags, char *errstr, size_t errlen)
{
    if (!os) return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore put: store is NULL");
    ts_status st = check_key(key, "put", errstr, errlen);
    if (st != TS_OK) return st;
    if (!data && len)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore put of '%s': data is NULL", key);
    if (flags & ~(unsigned)TS_PUT_IF_NONE_MATCH)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore put of '%s': unknown flags 0x%x",
                          key, flags);
    st = count(os, TS_OBJSTORE_OP_PUT, os->ops->put(os, key, data, len, flags, errstr, errlen));
    if (st == TS_OK) atomic_fetch_add_explicit(&os->ctr_bytes_put, len, memory_order_relaxed);
    return st;
}

ts_status ts_objstore_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                                  char *errstr, size_t errlen)
{
    if (!os || !out)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore writer_open: store or out is NULL");
    *out = NULL;
    ts_status st = check_key(key, "writer_open", errstr, errlen);
    if (st != TS_OK) return st;
    st = os->ops->writer_open(os, key, out, errstr, errlen);
    if (st == TS_OK) (*out)->os = os;
    else count(os, TS_OBJSTORE_OP_PUT, st);
    return st;
}

ts_status ts_objstore_writer_write(ts_objstore_writer *w, const void *data, size_t len,
                                   char *errstr, size_t errlen)
{
    if (!w) return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore writer_write: writer is NULL");
    if (!len) return TS_OK;
    if (!data)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore writer_write: data is NULL");
    ts_status st = w->ops->write(w, data, len, errstr, errlen);
    /* Counted as written: a multipart upload has sent these bytes even if
     * its commit later fails, and the store bills them. */
    if (st == TS_OK && w->os)
        atomic_fetch_add_explicit(&w->os->ctr_bytes_put, len, memory_order_relaxed);
    return st;
}

ts_status ts_objstore_writer_commit(ts_objstore_writer *w, char *errstr, size_t errlen)
{
    if (!w)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore writer_commit: writer is NULL");
    ts_objstore *os = w->os; /* commit frees w */
    ts_status st = w->ops->commit(w, errstr, errlen);
    return os ? count(os, TS_OBJSTORE_OP_PUT, st) : st;
}

void ts_objstore_writer_abort(ts_objstore_writer *w)
{
    if (w) w->ops->abort(w);
}

ts_status ts_objstore_get(ts_objstore *os, const char *key, uint64_t offset, uint64_t len,
                          uint8_t **out, size_t *out_len, char *errstr, size_t errlen)
{
    if (!os || !out || !out_len)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore get: store, out or out_len is NULL");
    *out = NULL;
    *out_len = 0;
    ts_status st = check_key(key, "get", errstr, errlen);
    if (st != TS_OK) return st;
    /* S3 cannot express an empty range (bytes=a-(a-1) is invalid), so no
     * backend is asked for one: a zero length is a caller bug. */
    if (len == 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "objstore get of '%s': zero-length range at offset %llu", key,
                          (unsigned long long)offset);
    st = count(os, TS_OBJSTORE_OP_GET, os->ops->get(os, key, offset, len, out, out_len, errstr, errlen));
    if (st == TS_OK) atomic_fetch_add_explicit(&os->ctr_bytes_got, *out_len, memory_order_relaxed);
    return st;
}

ts_status ts_objstore_head(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                           size_t errlen)
{
    if (!os || !size)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore head: store or size is NULL");
    ts_status st = check_key(key, "head", errstr, errlen);
    if (st != TS_OK) return st;
    return count(os, TS_OBJSTORE_OP_HEAD, os->ops->head(os, key, size, errstr, errlen));
}

ts_status ts_objstore_delete(ts_objstore *os, const char *key, char *errstr, size_t errlen)
{
    if (!os) return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore delete: store is NULL");
    ts_status st = check_key(key, "delete", errstr, errlen);
    if (st != TS_OK) return st;
    return count(os, TS_OBJSTORE_OP_DELETE, os->ops->del(os, key, errstr, errlen));
}

ts_status ts_objstore_delete_many(ts_objstore *os, const char *const *keys, size_t n,
                                  char *errstr, size_t errlen)
{
    if (!os) return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore delete_many: store is NULL");
    if (n == 0) return TS_OK;
    if (!keys)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore delete_many: keys is NULL");
    /* All keys are checked before any is deleted: one bad key in a batch
     * is a caller bug, and a half-done batch would hide it. */
    for (size_t i = 0; i < n; i++) {
        ts_status st = check_key(keys[i], "delete_many", errstr, errlen);
        if (st != TS_OK) return ts_err_prefix(errstr, errlen, st, "key %zu of %zu", i + 1, n);
    }
    if (os->ops->del_many)
        return count(os, TS_OBJSTORE_OP_DELETE, os->ops->del_many(os, keys, n, errstr, errlen));
    /* Deletes are idempotent, so keep going after a failure: the caller
     * retries the whole batch and every key deleted now is work saved. The
     * first failure is what gets reported. */
    ts_status first = TS_OK;
    size_t failed = 0;
    char msg[512] = "";
    for (size_t i = 0; i < n; i++) {
        ts_status st = count(os, TS_OBJSTORE_OP_DELETE, os->ops->del(os, keys[i], msg, sizeof(msg)));
        if (st == TS_OK) continue;
        if (first == TS_OK) {
            first = st;
            ts_err_set(errstr, errlen, st, "%s", msg);
        }
        failed++;
    }
    if (first != TS_OK)
        return ts_err_prefix(errstr, errlen, first, "objstore delete_many: %zu of %zu deletes failed",
                             failed, n);
    return TS_OK;
}

ts_status ts_objstore_list(ts_objstore *os, const char *prefix,
                           int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                           char *errstr, size_t errlen)
{
    if (!os || !cb)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "objstore list: store or callback is NULL");
    if (!prefix) prefix = "";
    if (prefix[0] == '/')
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "objstore list: prefix '%.64s' starts with '/'; keys are relative to "
                          "the store's root",
                          prefix);
    ts_status st = check_prefix(prefix, errstr, errlen);
    if (st != TS_OK) return st;
    return count(os, TS_OBJSTORE_OP_LIST, os->ops->list(os, prefix, cb, opaque, errstr, errlen));
}
