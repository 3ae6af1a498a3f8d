/*
 * s3_sign.c — AWS Signature Version 4 (see s3_sign.h).
 *
 * The four steps of the AWS documentation, in order: canonical request,
 * string to sign, signing key (an HMAC chain over date, region, service and
 * "aws4_request" keyed by "AWS4"+secret), signature. Headers are sorted by
 * lowercase name with values trimmed and inner runs of spaces folded;
 * query parameters are encoded first and then sorted, as the documentation
 * says. Every string is built in a capped ts_buf; the secret only ever
 * reaches HMAC() and is wiped from the stack afterwards.
 */
#include "s3_sign.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define SIGN_BUF_MAX (64 * 1024)

static const char HEX[] = "0123456789abcdef";

static void hex_of(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void ts_s3_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void ts_s3_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    ts_s3_sha256(data, len, d);
    hex_of(d, 32, out);
}

void ts_s3_base64(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

void ts_s3_md5(const void *data, size_t len, char hex[33], char b64[25])
{
    uint8_t d[16];
    unsigned int n = 16;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    if (hex) hex_of(d, 16, hex);
    if (b64) ts_s3_base64(d, 16, b64);
}

void ts_s3_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

ts_status ts_s3_uri_encode(ts_buf *out, const char *s, size_t len, int encode_slash)
{
    static const char UHEX[] = "0123456789ABCDEF";
    ts_status st = ts_buf_reserve(out, len * 3 + 1);
    if (st) return st;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (c == '/' && !encode_slash)) {
            out->data[out->len++] = c;
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = (uint8_t)UHEX[c >> 4];
            out->data[out->len++] = (uint8_t)UHEX[c & 15];
        }
    }
    out->data[out->len] = '\0';
    return TS_OK;
}

/* One canonical header or query pair, owned strings. */
typedef struct canon_kv {
    char *k;
    char *v;
} canon_kv;

static int cmp_kv(const void *a, const void *b)
{
    const canon_kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static void free_kvs(canon_kv *kv, size_t n)
{
    if (!kv) return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].k);
        free(kv[i].v);
    }
    free(kv);
}

/* Lowercase name; value trimmed with inner runs of spaces folded to one. */
static ts_status canon_header(const ts_s3_kv *in, canon_kv *out)
{
    size_t nl = strlen(in->name), vl = strlen(in->value);
    out->k = malloc(nl + 1);
    out->v = malloc(vl + 1);
    if (!out->k || !out->v) return TS_E_NOMEM;
    for (size_t i = 0; i <= nl; i++) out->k[i] = (char)tolower((unsigned char)in->name[i]);
    const char *s = in->value, *e = in->value + vl;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    size_t o = 0;
    for (; s < e; s++) {
        if ((*s == ' ' || *s == '\t') && o && out->v[o - 1] == ' ') continue;
        out->v[o++] = (*s == '\t') ? ' ' : *s;
    }
    out->v[o] = '\0';
    return TS_OK;
}

static ts_status canon_query(const ts_s3_kv *in, canon_kv *out)
{
    ts_buf k, v;
    ts_buf_init(&k, SIGN_BUF_MAX);
    ts_buf_init(&v, SIGN_BUF_MAX);
    ts_status st = ts_s3_uri_encode(&k, in->name, strlen(in->name), 1);
    if (!st) st = ts_s3_uri_encode(&v, in->value ? in->value : "", in->value ? strlen(in->value) : 0, 1);
    if (!st) st = ts_buf_append(&k, "", 1);
    if (!st) st = ts_buf_append(&v, "", 1);
    if (st) {
        ts_buf_free(&k);
        ts_buf_free(&v);
        return st;
    }
    out->k = (char *)ts_buf_steal(&k, NULL);
    out->v = (char *)ts_buf_steal(&v, NULL);
    return TS_OK;
}

static void hmac256(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n);
}

ts_status ts_s3_sign(const ts_s3_sign_req *r, ts_buf *authorization, ts_buf *canonical_request,
                     ts_buf *string_to_sign)
{
    if (!r->method || !r->path || !r->payload_hash || !r->amz_date || strlen(r->amz_date) != 16 ||
        !r->region || !r->service || !r->access_key_id || !r->secret_access_key)
        return TS_E_INVAL;
    ts_status st = TS_OK;
    canon_kv *hs = calloc(r->nheaders ? r->nheaders : 1, sizeof(*hs));
    canon_kv *qs = calloc(r->nquery ? r->nquery : 1, sizeof(*qs));
    ts_buf creq, sts, signed_hdrs;
    ts_buf_init(&creq, SIGN_BUF_MAX);
    ts_buf_init(&sts, SIGN_BUF_MAX);
    ts_buf_init(&signed_hdrs, SIGN_BUF_MAX);
    uint8_t k1[32], k2[32], k3[32], k4[32], sig[32];
    char secret_key[256];
    if (!hs || !qs) {
        st = TS_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->nheaders && !st; i++) st = canon_header(&r->headers[i], &hs[i]);
    for (size_t i = 0; i < r->nquery && !st; i++) st = canon_query(&r->query[i], &qs[i]);
    if (st) goto out;
    qsort(hs, r->nheaders, sizeof(*hs), cmp_kv);
    qsort(qs, r->nquery, sizeof(*qs), cmp_kv);

    /* 1. Canonical request. */
    st = ts_buf_printf(&creq, "%s\n%s\n", r->method, r->path);
    for (size_t i = 0; i < r->nquery && !st; i++)
        st = ts_buf_printf(&creq, "%s%s=%s", i ? "&" : "", qs[i].k, qs[i].v);
    if (!st) st = ts_buf_append(&creq, "\n", 1);
    for (size_t i = 0; i < r->nheaders && !st; i++) {
        st = ts_buf_printf(&creq, "%s:%s\n", hs[i].k, hs[i].v);
        if (!st) st = ts_buf_printf(&signed_hdrs, "%s%s", i ? ";" : "", hs[i].k);
    }
    if (!st && !r->nheaders) st = ts_buf_printf(&signed_hdrs, "%s", "");
    if (!st)
        st = ts_buf_printf(&creq, "\n%s\n%s", (const char *)signed_hdrs.data, r->payload_hash);
    if (st) goto out;

    /* 2. String to sign. */
    char creq_hash[65];
    ts_s3_sha256_hex(creq.data, creq.len, creq_hash);
    char date[9];
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    st = ts_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", r->amz_date, date,
                       r->region, r->service, creq_hash);
    if (st) goto out;

    /* 3. Signing key; 4. signature. */
    int kl = snprintf(secret_key, sizeof(secret_key), "AWS4%s", r->secret_access_key);
    if (kl < 0 || (size_t)kl >= sizeof(secret_key)) {
        st = TS_E_INVAL;
        goto out;
    }
    hmac256(secret_key, (size_t)kl, date, 8, k1);
    hmac256(k1, 32, r->region, strlen(r->region), k2);
    hmac256(k2, 32, r->service, strlen(r->service), k3);
    hmac256(k3, 32, "aws4_request", 12, k4);
    hmac256(k4, 32, sts.data, sts.len, sig);
    char sig_hex[65];
    hex_of(sig, 32, sig_hex);

    ts_buf_reset(authorization);
    st = ts_buf_printf(authorization,
                       "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,SignedHeaders=%s,"
                       "Signature=%s",
                       r->access_key_id, date, r->region, r->service,
                       (const char *)signed_hdrs.data, sig_hex);
    if (st) goto out;
    if (canonical_request) {
        ts_buf_reset(canonical_request);
        st = ts_buf_printf(canonical_request, "%.*s", (int)creq.len, (const char *)creq.data);
    }
    if (!st && string_to_sign) {
        ts_buf_reset(string_to_sign);
        st = ts_buf_printf(string_to_sign, "%.*s", (int)sts.len, (const char *)sts.data);
    }
out:
    OPENSSL_cleanse(secret_key, sizeof(secret_key));
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    OPENSSL_cleanse(k3, sizeof(k3));
    OPENSSL_cleanse(k4, sizeof(k4));
    free_kvs(hs, r->nheaders);
    free_kvs(qs, r->nquery);
    ts_buf_free(&creq);
    ts_buf_free(&sts);
    ts_buf_free(&signed_hdrs);
    return st;
}
