/*
 * s3_addr.h — where an S3 request goes: bucket and key prefix from the
 * store URL, endpoint, path-style or virtual-hosted addressing, and the
 * request URL plus the canonical URI that SigV4 signs.
 *
 *   path style:      http://127.0.0.1:7480/bucket/prefix/key   Host: 127.0.0.1:7480
 *   virtual-hosted:  https://bucket.s3.eu-west-1.amazonaws.com/prefix/key
 *                                                Host: bucket.s3.eu-west-1.amazonaws.com
 *
 * Pure string work (no I/O), so unit tests pin every form.
 */
#ifndef TS_OBJSTORE_S3_ADDR_H
#define TS_OBJSTORE_S3_ADDR_H

#include <stddef.h>

#include "common/buf.h"
#include "s3_sign.h"
#include "s3_xml.h"
#include "tierstore.h"

typedef struct ts_s3_addr {
    char bucket[256];
    char prefix[TS_S3_KEY_MAX + 1]; /* "" or "a/b/": every key lives under it */
    char scheme[8];                 /* "http" or "https" */
    char host[512];                 /* Host header (includes the bucket when virtual) */
    char base_path[256];            /* path of the endpoint URL, "" or "/p" */
    char endpoint[1100];            /* scheme://host[:port][/path], for messages */
    int path_style;
} ts_s3_addr;

/* Parses url ("s3://bucket[/prefix]") and the endpoint ("" = AWS for the
 * region: https://s3.<region>.amazonaws.com). path_style is "true",
 * "false" or "auto" (path style exactly when an endpoint is given).
 * TS_E_CONFIG with a message naming the bad part. */
ts_status ts_s3_addr_init(ts_s3_addr *a, const char *url, const char *endpoint, const char *region,
                          const char *path_style, char *errstr, size_t errlen);

/* Builds the canonical URI (path) and the full URL (url) of a request for
 * key under the prefix (key NULL: the bucket itself) with the given raw
 * query parameters. Both buffers are appended to. */
ts_status ts_s3_addr_target(const ts_s3_addr *a, const char *key, const ts_s3_kv *query,
                            size_t nquery, ts_buf *path, ts_buf *url);

#endif
