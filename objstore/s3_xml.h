/*
 * s3_xml.h — the few S3 XML responses the client reads, parsed through
 * bounded slices: ListObjectsV2 results, error documents, multipart
 * initiate/complete results and DeleteObjects results.
 *
 * Not a general XML parser: S3 responses are flat and machine-written, so
 * each parser looks up the elements it needs by name inside the slice of
 * its parent, never reading outside the body it was given. Input is
 * untrusted (any server, any proxy): every parser checks lengths and fails
 * with TS_E_CORRUPT instead of asserting.
 */
#ifndef TS_OBJSTORE_S3_XML_H
#define TS_OBJSTORE_S3_XML_H

#include <stddef.h>
#include <stdint.h>

#include "tierstore.h"

#define TS_S3_KEY_MAX 1024 /* S3's limit on key length, in bytes */

typedef struct ts_s3_slice {
    const char *p;
    size_t len;
} ts_s3_slice;

/* Finds the next element <tag>…</tag> (or <tag/>) in in, starting at *pos.
 * On success stores its content in *inner, moves *pos past it and returns
 * 1; returns 0 when there is none, -1 when an element opens but never
 * closes. */
int ts_s3_xml_next(ts_s3_slice in, size_t *pos, const char *tag, ts_s3_slice *inner);

/* Copies the text of s into out (NUL-terminated), decoding the XML
 * entities (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;). TS_E_CORRUPT when it
 * does not fit or an entity is malformed. */
ts_status ts_s3_xml_text(ts_s3_slice s, char *out, size_t outlen);

/* Error document (<Error><Code>…</Code><Message>…</Message></Error>),
 * possibly inside a 200 response (CompleteMultipartUpload). Returns 1 and
 * fills code/message (either may be truncated, never unterminated) when
 * the body holds an Error element, 0 otherwise. */
int ts_s3_xml_parse_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
                          size_t msglen);

/* ListObjectsV2 result: calls cb(key, size, opaque) for each Contents in
 * document order until it returns non-zero (then *stopped = 1). Sets
 * *truncated from IsTruncated and copies NextContinuationToken into token
 * (empty when absent). */
ts_status ts_s3_xml_parse_list(const char *body, size_t len,
                               int (*cb)(const char *key, uint64_t size, void *opaque),
                               void *opaque, int *stopped, int *truncated, char *token,
                               size_t tokenlen, size_t *nkeys);

/* InitiateMultipartUploadResult: the UploadId. */
ts_status ts_s3_xml_parse_upload_id(const char *body, size_t len, char *upload_id, size_t idlen);

/* CompleteMultipartUploadResult: TS_OK when the element is present (its
 * ETag may be empty: Ceph RGW answers so), TS_E_CORRUPT otherwise. */
ts_status ts_s3_xml_parse_complete(const char *body, size_t len);

/* DeleteResult: calls cb(key, code, message, opaque) for each Error
 * element; *ndeleted counts the Deleted elements. */
ts_status ts_s3_xml_parse_delete(const char *body, size_t len,
                                 void (*cb)(const char *key, const char *code, const char *msg,
                                            void *opaque),
                                 void *opaque, size_t *ndeleted);

#endif
