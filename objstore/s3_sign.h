/*
 * s3_sign.h — AWS Signature Version 4 for S3 (header-based, single chunk),
 * and the digests and encodings the S3 client needs around it.
 *
 * Internal to objstore/: the S3 client (s3.c) and its unit tests use it.
 * Pure functions of their inputs (no clock, no globals), so the worked
 * examples of the AWS documentation can be reproduced byte for byte.
 */
#ifndef TS_OBJSTORE_S3_SIGN_H
#define TS_OBJSTORE_S3_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "tierstore.h"

#define TS_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct ts_s3_kv {
    const char *name;
    const char *value;
} ts_s3_kv;

typedef struct ts_s3_sign_req {
    const char *method;            /* "GET", "PUT", ... */
    const char *path;              /* canonical URI, already URI-encoded ("/test%24file.text") */
    const ts_s3_kv *query;         /* raw (unencoded) query parameters, any order */
    size_t nquery;
    const ts_s3_kv *headers;       /* every header to sign (host and x-amz-* at least), any case */
    size_t nheaders;
    const char *payload_hash;      /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;          /* "YYYYMMDDTHHMMSSZ" (also sent as x-amz-date) */
    const char *region;            /* "us-east-1" */
    const char *service;           /* "s3" */
    const char *access_key_id;
    const char *secret_access_key; /* only ever used as HMAC key material */
} ts_s3_sign_req;

/* Computes the Authorization header value ("AWS4-HMAC-SHA256 Credential=…,
 * SignedHeaders=…,Signature=…") into *authorization (reset first). When
 * non-NULL, canonical_request and string_to_sign receive the intermediate
 * strings (tests compare them with the documentation). TS_E_NOMEM when a
 * buffer cap is hit, TS_E_INVAL on a missing field. */
ts_status ts_s3_sign(const ts_s3_sign_req *r, ts_buf *authorization, ts_buf *canonical_request,
                     ts_buf *string_to_sign);

/* Appends s[0..len) URI-encoded the SigV4 way: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) as is, '/' as is unless encode_slash, every other
 * byte as %XX (uppercase hex). */
ts_status ts_s3_uri_encode(ts_buf *out, const char *s, size_t len, int encode_slash);

/* Lowercase hex SHA-256 (65 bytes with the NUL). */
void ts_s3_sha256_hex(const void *data, size_t len, char out[65]);
/* Raw SHA-256 (32 bytes). */
void ts_s3_sha256(const void *data, size_t len, uint8_t out[32]);
/* MD5 as lowercase hex (33 bytes) and as base64 (25 bytes, for Content-MD5). */
void ts_s3_md5(const void *data, size_t len, char hex[33], char b64[25]);
/* Base64 of n bytes into out (4*ceil(n/3)+1 bytes). */
void ts_s3_base64(const uint8_t *in, size_t n, char *out);
/* "YYYYMMDDTHHMMSSZ" of t (UTC) into out[17]. */
void ts_s3_amz_date(time_t t, char out[17]);

#endif
