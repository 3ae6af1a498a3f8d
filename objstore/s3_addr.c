/*
 * s3_addr.c — S3 addressing (see s3_addr.h).
 *
 * The canonical URI is the URI-encoded path exactly as sent (S3 does not
 * normalise or double-encode it), so the URL is built from the same
 * encoded path the signature covers. Query parameters are encoded the
 * SigV4 way as well; their order in the URL does not matter to the server.
 */
#include "s3_addr.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

static const char BUCKET_CHARS[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";

ts_status ts_s3_addr_init(ts_s3_addr *a, const char *url, const char *endpoint, const char *region,
                          const char *path_style, char *errstr, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (strncmp(url, "s3://", 5))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "invalid S3 URL '%s': expected s3://bucket[/prefix]", url);
    const char *b = url + 5;
    size_t bl = strcspn(b, "/");
    if (bl == 0 || bl >= sizeof(a->bucket) || strspn(b, BUCKET_CHARS) < bl)
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "invalid S3 URL '%s': bad bucket name (letters, digits, '.', '-', '_')",
                          url);
    memcpy(a->bucket, b, bl);
    const char *p = b + bl;
    while (*p == '/') p++;
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/') pl--;
    if (pl + 1 >= sizeof(a->prefix))
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "invalid S3 URL '%s': prefix too long", url);
    if (pl) {
        memcpy(a->prefix, p, pl);
        a->prefix[pl] = '/';
    }

    char aws[128];
    if (!endpoint || !*endpoint) {
        snprintf(aws, sizeof(aws), "https://s3.%s.amazonaws.com",
                 region && *region ? region : "us-east-1");
        endpoint = aws;
        a->path_style = path_style && !strcmp(path_style, "true");
    } else {
        a->path_style = !path_style || strcmp(path_style, "false");
    }
    const char *rest;
    if (!strncmp(endpoint, "http://", 7)) {
        strcpy(a->scheme, "http");
        rest = endpoint + 7;
    } else if (!strncmp(endpoint, "https://", 8)) {
        strcpy(a->scheme, "https");
        rest = endpoint + 8;
    } else {
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "invalid S3 endpoint '%s': expected http://host[:port] or "
                          "https://host[:port]",
                          endpoint);
    }
    size_t hl = strcspn(rest, "/?#");
    if (hl == 0 || hl + bl + 2 > sizeof(a->host))
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "invalid S3 endpoint '%s': bad host",
                          endpoint);
    const char *path = rest + hl;
    size_t ep = strcspn(path, "?#");
    while (ep && path[ep - 1] == '/') ep--;
    if (ep >= sizeof(a->base_path))
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "invalid S3 endpoint '%s': path too long",
                          endpoint);
    memcpy(a->base_path, path, ep);
    if (a->path_style)
        snprintf(a->host, sizeof(a->host), "%.*s", (int)hl, rest);
    else
        snprintf(a->host, sizeof(a->host), "%s.%.*s", a->bucket, (int)hl, rest);
    snprintf(a->endpoint, sizeof(a->endpoint), "%s://%.*s%s", a->scheme, (int)hl, rest,
             a->base_path);
    return TS_OK;
}

ts_status ts_s3_addr_target(const ts_s3_addr *a, const char *key, const ts_s3_kv *query,
                            size_t nquery, ts_buf *path, ts_buf *url)
{
    ts_buf raw, q;
    ts_buf_init(&raw, 8192);
    ts_buf_init(&q, 16384);
    ts_status st = ts_buf_printf(&raw, "%s/", a->base_path);
    if (!st && a->path_style) st = ts_buf_printf(&raw, "%s%s", a->bucket, key ? "/" : "");
    if (!st && key) st = ts_buf_printf(&raw, "%s%s", a->prefix, key);
    size_t path_at = path->len;
    if (!st) st = ts_s3_uri_encode(path, (const char *)raw.data, raw.len, 0);
    if (!st) st = ts_buf_printf(&q, "%s", "");
    for (size_t i = 0; i < nquery && !st; i++) {
        if (i) st = ts_buf_append(&q, "&", 1);
        if (!st) st = ts_s3_uri_encode(&q, query[i].name, strlen(query[i].name), 1);
        if (!st) st = ts_buf_append(&q, "=", 1);
        if (!st) st = ts_s3_uri_encode(&q, query[i].value, strlen(query[i].value), 1);
    }
    if (!st)
        st = ts_buf_printf(url, "%s://%s%.*s%s%.*s", a->scheme, a->host, (int)(path->len - path_at),
                           (const char *)path->data + path_at, q.len ? "?" : "", (int)q.len,
                           q.len ? (const char *)q.data : "");
    ts_buf_free(&raw);
    ts_buf_free(&q);
    return st;
}
