/*
 * test_s3_unit.c — unit tests of the S3 backend's pure parts: SigV4 against
 * the worked examples of the AWS S3 documentation ("Signature Calculations
 * for the Authorization Header: Transferring Payload in a Single Chunk"),
 * the XML response parsers, addressing (path style and virtual-hosted),
 * and credential/config file resolution.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "objstore/s3_addr.h"
#include "objstore/s3_creds.h"
#include "objstore/s3_sign.h"
#include "objstore/s3_xml.h"
#include "tt.h"

/* The documented example credentials and time. */
#define EX_ID "AKIAIOSFODNN7EXAMPLE"
#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_DATE "20130524T000000Z"
#define EX_HOST "examplebucket.s3.amazonaws.com"

static ts_s3_sign_req ex_req(const char *method, const char *path, const ts_s3_kv *q, size_t nq,
                             const ts_s3_kv *h, size_t nh, const char *payload)
{
    return (ts_s3_sign_req){.method = method, .path = path, .query = q, .nquery = nq,
                            .headers = h, .nheaders = nh, .payload_hash = payload,
                            .amz_date = EX_DATE, .region = "us-east-1", .service = "s3",
                            .access_key_id = EX_ID, .secret_access_key = EX_SECRET};
}

typedef struct signed_out {
    ts_buf auth, creq, sts;
} signed_out;

static int sign(const ts_s3_sign_req *r, signed_out *o)
{
    ts_buf_init(&o->auth, 0);
    ts_buf_init(&o->creq, 0);
    ts_buf_init(&o->sts, 0);
    return ts_s3_sign(r, &o->auth, &o->creq, &o->sts);
}

static void signed_free(signed_out *o)
{
    ts_buf_free(&o->auth);
    ts_buf_free(&o->creq);
    ts_buf_free(&o->sts);
}

#define EX_SCOPE "20130524/us-east-1/s3/aws4_request"

/* The fixture of every worked example: signs r and checks the canonical
 * request, then the string to sign and the Authorization header, which
 * differ between the examples only in the canonical request's hash, the
 * signed header list and the signature. */
static void expect_signed(const ts_s3_sign_req *r, const char *canonical_request,
                          const char *creq_hash, const char *signed_headers, const char *signature)
{
    char sts[256], auth[512];
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n" EX_DATE "\n" EX_SCOPE "\n%s", creq_hash);
    snprintf(auth, sizeof(auth),
             "AWS4-HMAC-SHA256 Credential=" EX_ID "/" EX_SCOPE ",SignedHeaders=%s,Signature=%s",
             signed_headers, signature);
    signed_out o;
    TT_CHECK_OK(sign(r, &o));
    TT_CHECK_STR((char *)o.creq.data, canonical_request);
    TT_CHECK_STR((char *)o.sts.data, sts);
    TT_CHECK_STR((char *)o.auth.data, auth);
done:
    signed_free(&o);
}

/* The bucket-level GET examples: the three headers S3 requires, no body. */
static const ts_s3_kv EX_BUCKET_GET_HEADERS[] = {
    {"Host", EX_HOST}, {"x-amz-date", EX_DATE}, {"x-amz-content-sha256", TS_S3_EMPTY_SHA256}};

static void expect_bucket_get(const ts_s3_kv *q, size_t nq, const char *canonical_query,
                              const char *creq_hash, const char *signature)
{
    char creq[1024];
    snprintf(creq, sizeof(creq),
             "GET\n/\n%s\n"
             "host:examplebucket.s3.amazonaws.com\n"
             "x-amz-content-sha256:" TS_S3_EMPTY_SHA256 "\n"
             "x-amz-date:" EX_DATE "\n\n"
             "host;x-amz-content-sha256;x-amz-date\n" TS_S3_EMPTY_SHA256,
             canonical_query);
    ts_s3_sign_req r = ex_req("GET", "/", q, nq, EX_BUCKET_GET_HEADERS, 3, TS_S3_EMPTY_SHA256);
    expect_signed(&r, creq, creq_hash, "host;x-amz-content-sha256;x-amz-date", signature);
}

/* Example: GET Object (first 10 bytes of test.txt). */
TT_TEST(sigv4_get_object_range)
{
    ts_s3_kv h[] = {{"Host", EX_HOST},
                    {"Range", "bytes=0-9"},
                    {"x-amz-content-sha256", TS_S3_EMPTY_SHA256},
                    {"x-amz-date", EX_DATE}};
    ts_s3_sign_req r = ex_req("GET", "/test.txt", NULL, 0, h, 4, TS_S3_EMPTY_SHA256);
    expect_signed(&r,
                  "GET\n/test.txt\n\n"
                  "host:examplebucket.s3.amazonaws.com\n"
                  "range:bytes=0-9\n"
                  "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                  "x-amz-date:20130524T000000Z\n\n"
                  "host;range;x-amz-content-sha256;x-amz-date\n"
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                  "host;range;x-amz-content-sha256;x-amz-date",
                  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

/* Example: PUT Object ("Welcome to Amazon S3." as test$file.text). */
TT_TEST(sigv4_put_object)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    ts_s3_sha256_hex(body, strlen(body), hash);
    TT_ASSERT_STR(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    ts_buf path;
    ts_buf_init(&path, 0);
    TT_OK(ts_s3_uri_encode(&path, "/test$file.text", 15, 0));
    TT_ASSERT_STR((char *)path.data, "/test%24file.text");
    ts_s3_kv h[] = {{"Host", EX_HOST},
                    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                    {"x-amz-date", EX_DATE},
                    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                    {"x-amz-content-sha256", hash}};
    ts_s3_sign_req r = ex_req("PUT", (char *)path.data, NULL, 0, h, 5, hash);
    expect_signed(&r,
                  "PUT\n/test%24file.text\n\n"
                  "date:Fri, 24 May 2013 00:00:00 GMT\n"
                  "host:examplebucket.s3.amazonaws.com\n"
                  "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                  "x-amz-date:20130524T000000Z\n"
                  "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                  "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    ts_buf_free(&path);
}

/* Example: GET Bucket Lifecycle (?lifecycle). */
TT_TEST(sigv4_get_bucket_lifecycle)
{
    ts_s3_kv q[] = {{"lifecycle", ""}};
    expect_bucket_get(q, 1, "lifecycle=",
                      "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                      "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

/* Example: Get Bucket (List Objects) ?max-keys=2&prefix=J — given out of
 * order to check that the signer sorts the query. */
TT_TEST(sigv4_list_objects)
{
    ts_s3_kv q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    expect_bucket_get(q, 2, "max-keys=2&prefix=J",
                      "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                      "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TT_TEST(sigv4_header_values_trimmed_and_folded)
{
    /* Same request as the GET example with messy whitespace and case. */
    ts_s3_kv h[] = {{"HOST", "  " EX_HOST "  "},
                    {"range", "bytes=0-9"},
                    {"X-Amz-Content-Sha256", TS_S3_EMPTY_SHA256},
                    {"X-AMZ-DATE", "\t" EX_DATE}};
    ts_s3_sign_req r = ex_req("GET", "/test.txt", NULL, 0, h, 4, TS_S3_EMPTY_SHA256);
    signed_out o;
    TT_OK(sign(&r, &o));
    TT_ASSERT(strstr((char *)o.auth.data,
                     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
    signed_free(&o);
    ts_s3_kv h2[] = {{"host", EX_HOST}, {"x-amz-meta-a", "a   b  c"}};
    r = ex_req("GET", "/", NULL, 0, h2, 2, TS_S3_EMPTY_SHA256);
    TT_OK(sign(&r, &o));
    TT_ASSERT(strstr((char *)o.creq.data, "x-amz-meta-a:a b c\n"));
    signed_free(&o);
}

TT_TEST(sigv4_rejects_missing_fields)
{
    ts_s3_sign_req r = ex_req("GET", "/", NULL, 0, NULL, 0, TS_S3_EMPTY_SHA256);
    r.amz_date = "2013";
    signed_out o;
    TT_ASSERT_EQ_INT(sign(&r, &o), TS_E_INVAL);
    signed_free(&o);
}

TT_TEST(uri_encode_rules)
{
    ts_buf b;
    ts_buf_init(&b, 0);
    const char *k = "a b/ü~_.-+*=&%";
    TT_OK(ts_s3_uri_encode(&b, k, strlen(k), 0));
    TT_ASSERT_STR((char *)b.data, "a%20b/%C3%BC~_.-%2B%2A%3D%26%25");
    ts_buf_reset(&b);
    TT_OK(ts_s3_uri_encode(&b, "a/b", 3, 1));
    TT_ASSERT_STR((char *)b.data, "a%2Fb");
    ts_buf_free(&b);
}

TT_TEST(digests)
{
    char hex[33], b64[25];
    ts_s3_md5("", 0, hex, b64);
    TT_ASSERT_STR(hex, "d41d8cd98f00b204e9800998ecf8427e");
    TT_ASSERT_STR(b64, "1B2M2Y8AsgTpgAmY7PhCfg==");
    char amz[17];
    ts_s3_amz_date(1369353600, amz); /* 2013-05-24T00:00:00Z */
    TT_ASSERT_STR(amz, EX_DATE);
}

/* ---------------------------------------------------------------- XML */
typedef struct listed {
    char keys[8][64];
    uint64_t sizes[8];
    int n, stop_at;
} listed;

static int on_key(const char *key, uint64_t size, void *opaque)
{
    listed *l = opaque;
    if (l->n < 8) {
        snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
        l->sizes[l->n] = size;
    }
    l->n++;
    return l->stop_at && l->n >= l->stop_at;
}

static const char LIST_PAGE[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bucket</Name><Prefix>p/</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>p/a&amp;b</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>p/&#x00FC;&#252;</Key><Size>0</Size></Contents>"
    "<Contents><Key>p/c&lt;d&gt;</Key><Size>18446744073709551615</Size></Contents>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "<ContinuationTokenSomething>x</ContinuationTokenSomething>"
    "</ListBucketResult>";

TT_TEST(xml_list_page)
{
    listed l = {0};
    int stopped, truncated;
    size_t n;
    char token[256];
    TT_OK(ts_s3_xml_parse_list(LIST_PAGE, strlen(LIST_PAGE), on_key, &l, &stopped, &truncated,
                               token, sizeof(token), &n));
    TT_ASSERT_EQ_INT(l.n, 3);
    TT_ASSERT_EQ_INT(n, 3);
    TT_ASSERT_STR(l.keys[0], "p/a&b");
    TT_ASSERT_EQ_INT(l.sizes[0], 434234);
    TT_ASSERT_STR(l.keys[1], "p/\xc3\xbc\xc3\xbc");
    TT_ASSERT_STR(l.keys[2], "p/c<d>");
    TT_ASSERT(l.sizes[2] == UINT64_MAX);
    TT_ASSERT(truncated && !stopped);
    TT_ASSERT_STR(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");

    listed l2 = {.stop_at = 2};
    TT_OK(ts_s3_xml_parse_list(LIST_PAGE, strlen(LIST_PAGE), on_key, &l2, &stopped, &truncated,
                               token, sizeof(token), &n));
    TT_ASSERT(stopped);
    TT_ASSERT_EQ_INT(l2.n, 2);
}

TT_TEST(xml_list_last_and_empty_pages)
{
    const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                       "<Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>";
    const char *empty = "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>"
                        "<IsTruncated>false</IsTruncated></ListBucketResult>";
    listed l = {0};
    int stopped, truncated;
    size_t n;
    char token[64];
    TT_OK(ts_s3_xml_parse_list(last, strlen(last), on_key, &l, &stopped, &truncated, token,
                               sizeof(token), &n));
    TT_ASSERT(!truncated && l.n == 1 && token[0] == '\0');
    TT_OK(ts_s3_xml_parse_list(empty, strlen(empty), on_key, &l, &stopped, &truncated, token,
                               sizeof(token), &n));
    TT_ASSERT_EQ_INT(n, 0);
}

TT_TEST(xml_list_rejects_malformed)
{
    const char *bad[] = {
        "",
        "<ListBucketResult>",                                             /* never closes */
        "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>", /* no Size */
        "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&#0;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", /* no token */
        "<ListBucketResult><Contents><Key>k</Key><Size>1</Size>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        listed l = {0};
        int stopped, truncated;
        size_t n;
        char token[64];
        ts_status st = ts_s3_xml_parse_list(bad[i], strlen(bad[i]), on_key, &l, &stopped,
                                            &truncated, token, sizeof(token), &n);
        TT_ASSERT_MSG(st == TS_E_CORRUPT, "case %zu parsed as %s", i, ts_status_name(st));
    }
    /* A slice that stops mid-document must not be read past its end. */
    size_t cut = strlen(LIST_PAGE) - 40;
    char *copy = malloc(cut);
    memcpy(copy, LIST_PAGE, cut);
    listed l = {0};
    int stopped, truncated;
    size_t n;
    char token[64];
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_list(copy, cut, on_key, &l, &stopped, &truncated, token,
                                          sizeof(token), &n),
                     TS_E_CORRUPT);
    free(copy);
}

TT_TEST(xml_key_too_long)
{
    char *doc = malloc(4000);
    char *p = doc + sprintf(doc, "<ListBucketResult><Contents><Key>");
    memset(p, 'k', 1100);
    p += 1100;
    sprintf(p, "</Key><Size>1</Size></Contents></ListBucketResult>");
    listed l = {0};
    int stopped, truncated;
    size_t n;
    char token[64];
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_list(doc, strlen(doc), on_key, &l, &stopped, &truncated,
                                          token, sizeof(token), &n),
                     TS_E_CORRUPT);
    free(doc);
}

TT_TEST(xml_error_document)
{
    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                      "<Message>Please reduce your request rate.</Message>"
                      "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
    char code[64], msg[256];
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_error(doc, strlen(doc), code, sizeof(code), msg, sizeof(msg)), 1);
    TT_ASSERT_STR(code, "SlowDown");
    TT_ASSERT_STR(msg, "Please reduce your request rate.");
    char small[5];
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_error(doc, strlen(doc), small, sizeof(small), msg, 8), 1);
    TT_ASSERT_STR(small, "Slow");
    TT_ASSERT_STR(msg, "Please ");
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_error("<Errors/>", 9, code, sizeof(code), msg, sizeof(msg)), 0);
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_error(NULL, 0, code, sizeof(code), msg, sizeof(msg)), 0);
    TT_ASSERT_STR(code, "");
}

TT_TEST(xml_multipart_results)
{
    const char *init = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult xmlns=\"x\">"
                       "<Bucket>b</Bucket><Key>k</Key>"
                       "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
                       "</InitiateMultipartUploadResult>";
    char id[256];
    TT_OK(ts_s3_xml_parse_upload_id(init, strlen(init), id, sizeof(id)));
    TT_ASSERT_STR(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    const char *noid = "<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>";
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_upload_id(noid, strlen(noid), id, sizeof(id)), TS_E_CORRUPT);
    /* Ceph RGW answers CompleteMultipartUpload with an empty ETag. */
    const char *rgw = "<CompleteMultipartUploadResult><Location>l</Location><Bucket>b</Bucket>"
                      "<Key>k</Key><ETag></ETag></CompleteMultipartUploadResult>";
    TT_OK(ts_s3_xml_parse_complete(rgw, strlen(rgw)));
    const char *err = "<Error><Code>InternalError</Code></Error>";
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_complete(err, strlen(err)), TS_E_CORRUPT);
}

typedef struct del_seen {
    int n;
    char key[64], code[64];
} del_seen;

static void on_del(const char *key, const char *code, const char *msg, void *opaque)
{
    del_seen *d = opaque;
    (void)msg;
    d->n++;
    snprintf(d->key, sizeof(d->key), "%s", key);
    snprintf(d->code, sizeof(d->code), "%s", code);
}

TT_TEST(xml_delete_result)
{
    const char *doc = "<DeleteResult xmlns=\"x\"><Deleted><Key>a</Key></Deleted>"
                      "<Deleted><Key>b</Key></Deleted>"
                      "<Error><Key>c&amp;d</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
                      "</DeleteResult>";
    del_seen d = {0};
    size_t ndel;
    TT_OK(ts_s3_xml_parse_delete(doc, strlen(doc), on_del, &d, &ndel));
    TT_ASSERT_EQ_INT(ndel, 2);
    TT_ASSERT_EQ_INT(d.n, 1);
    TT_ASSERT_STR(d.key, "c&d");
    TT_ASSERT_STR(d.code, "AccessDenied");
    const char *quiet = "<DeleteResult/>";
    d.n = 0;
    TT_OK(ts_s3_xml_parse_delete(quiet, strlen(quiet), on_del, &d, &ndel));
    TT_ASSERT(ndel == 0 && d.n == 0);
    TT_ASSERT_EQ_INT(ts_s3_xml_parse_delete("<Nope/>", 7, on_del, &d, &ndel), TS_E_CORRUPT);
}

/* ---------------------------------------------------------------- addressing */
static int target(const ts_s3_addr *a, const char *key, const ts_s3_kv *q, size_t nq, char *path,
                  char *url)
{
    ts_buf p, u;
    ts_buf_init(&p, 0);
    ts_buf_init(&u, 0);
    ts_status st = ts_s3_addr_target(a, key, q, nq, &p, &u);
    if (!st) {
        snprintf(path, 512, "%s", (char *)p.data);
        snprintf(url, 512, "%s", (char *)u.data);
    }
    ts_buf_free(&p);
    ts_buf_free(&u);
    return st;
}

TT_TEST(addr_path_style_with_endpoint)
{
    ts_s3_addr a;
    char e[256], path[512], url[512];
    TT_OKE(ts_s3_addr_init(&a, "s3://tierstore-test//a/b/", "http://127.0.0.1:7480/", "us-east-1",
                           "auto", e, sizeof(e)), e);
    TT_ASSERT(a.path_style);
    TT_ASSERT_STR(a.bucket, "tierstore-test");
    TT_ASSERT_STR(a.prefix, "a/b/");
    TT_ASSERT_STR(a.host, "127.0.0.1:7480");
    TT_ASSERT_STR(a.endpoint, "http://127.0.0.1:7480");
    TT_OK(target(&a, "x y/z+1", NULL, 0, path, url));
    TT_ASSERT_STR(path, "/tierstore-test/a/b/x%20y/z%2B1");
    TT_ASSERT_STR(url, "http://127.0.0.1:7480/tierstore-test/a/b/x%20y/z%2B1");
    ts_s3_kv q[] = {{"list-type", "2"}, {"prefix", "a/b/"}};
    TT_OK(target(&a, NULL, q, 2, path, url));
    TT_ASSERT_STR(path, "/tierstore-test");
    TT_ASSERT_STR(url, "http://127.0.0.1:7480/tierstore-test?list-type=2&prefix=a%2Fb%2F");
    /* An endpoint with a path (a gateway mounted under /s3). */
    TT_OKE(ts_s3_addr_init(&a, "s3://b", "https://gw.example:8443/s3/", "us-east-1", "auto", e,
                           sizeof(e)), e);
    TT_ASSERT_STR(a.prefix, "");
    TT_OK(target(&a, "k", NULL, 0, path, url));
    TT_ASSERT_STR(path, "/s3/b/k");
    TT_ASSERT_STR(url, "https://gw.example:8443/s3/b/k");
}

TT_TEST(addr_virtual_hosted)
{
    ts_s3_addr a;
    char e[256], path[512], url[512];
    /* AWS by default: virtual-hosted, regional endpoint. */
    TT_OKE(ts_s3_addr_init(&a, "s3://examplebucket/seg", "", "eu-west-1", "auto", e, sizeof(e)), e);
    TT_ASSERT(!a.path_style);
    TT_ASSERT_STR(a.scheme, "https");
    TT_ASSERT_STR(a.host, "examplebucket.s3.eu-west-1.amazonaws.com");
    TT_OK(target(&a, "0/00001.log", NULL, 0, path, url));
    TT_ASSERT_STR(path, "/seg/0/00001.log");
    TT_ASSERT_STR(url, "https://examplebucket.s3.eu-west-1.amazonaws.com/seg/0/00001.log");
    ts_s3_kv q[] = {{"delete", ""}};
    TT_OK(target(&a, NULL, q, 1, path, url));
    TT_ASSERT_STR(path, "/");
    TT_ASSERT_STR(url, "https://examplebucket.s3.eu-west-1.amazonaws.com/?delete=");
    /* Forced path style on AWS; forced virtual on a custom endpoint. */
    TT_OKE(ts_s3_addr_init(&a, "s3://examplebucket", "", "eu-west-1", "true", e, sizeof(e)), e);
    TT_ASSERT_STR(a.host, "s3.eu-west-1.amazonaws.com");
    TT_OK(target(&a, "k", NULL, 0, path, url));
    TT_ASSERT_STR(path, "/examplebucket/k");
    TT_OKE(ts_s3_addr_init(&a, "s3://b1", "http://minio.local:9000", "", "false", e, sizeof(e)), e);
    TT_ASSERT_STR(a.host, "b1.minio.local:9000");
    TT_OK(target(&a, "k", NULL, 0, path, url));
    TT_ASSERT_STR(url, "http://b1.minio.local:9000/k");
}

TT_TEST(addr_rejects_bad_urls)
{
    ts_s3_addr a;
    char e[256];
    const char *bad_urls[] = {"s3://", "s3:///x", "file:///tmp", "s3://bad bucket/x", "s3://b%d"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
        TT_ASSERT_MSG(ts_s3_addr_init(&a, bad_urls[i], "", "us-east-1", "auto", e, sizeof(e)) ==
                          TS_E_CONFIG,
                      "%s accepted", bad_urls[i]);
    TT_ASSERT_EQ_INT(ts_s3_addr_init(&a, "s3://b", "ftp://x", "", "auto", e, sizeof(e)), TS_E_CONFIG);
    TT_ASSERT(strstr(e, "ftp://x") != NULL);
    TT_ASSERT_EQ_INT(ts_s3_addr_init(&a, "s3://b", "http:///nohost", "", "auto", e, sizeof(e)),
                     TS_E_CONFIG);
}

/* ---------------------------------------------------------------- credentials */
typedef struct fake_env {
    const char *kv[32];
} fake_env;

static const char *fake_getenv(const char *name, void *opaque)
{
    fake_env *e = opaque;
    for (int i = 0; e->kv[i]; i += 2)
        if (!strcmp(e->kv[i], name)) return e->kv[i + 1];
    return NULL;
}

static char g_dir[256];

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static const char CRED_FILE[] =
    "# comment\n"
    "[default]\n"
    "aws_access_key_id = DEFAULTID\n"
    "aws_secret_access_key=defaultsecret\n"
    "\n"
    "[dev]\r\n"
    "  ; indented comment\r\n"
    "aws_access_key_id   =   DEVID  \r\n"
    "aws_secret_access_key = dev/secret+x\r\n"
    "aws_session_token = devtoken\r\n"
    "[broken]\n"
    "aws_access_key_id = ONLYID\n";

static const char CONF_FILE[] =
    "[default]\n"
    "region = eu-west-3\n"
    "[profile dev]\n"
    "region = ap-south-1\n"
    "endpoint_url = http://127.0.0.1:9000\n"
    "s3 =\n"
    "  region = nested-must-be-ignored\n"
    "[profile cfgonly]\n"
    "aws_access_key_id = CFGID\n"
    "aws_secret_access_key = cfgsecret\n";

TT_TEST(ini_lookup)
{
    char v[64];
    TT_ASSERT_EQ_INT(ts_s3_ini_get(CRED_FILE, strlen(CRED_FILE), "dev", "aws_access_key_id", v, sizeof(v)), 0);
    TT_ASSERT_STR(v, "DEVID");
    TT_ASSERT_EQ_INT(ts_s3_ini_get(CRED_FILE, strlen(CRED_FILE), "default", "aws_secret_access_key", v, sizeof(v)), 0);
    TT_ASSERT_STR(v, "defaultsecret");
    TT_ASSERT_EQ_INT(ts_s3_ini_get(CRED_FILE, strlen(CRED_FILE), "nope", "aws_access_key_id", v, sizeof(v)), -1);
    TT_ASSERT_EQ_INT(ts_s3_ini_get(CONF_FILE, strlen(CONF_FILE), "profile dev", "region", v, sizeof(v)), 0);
    TT_ASSERT_STR(v, "ap-south-1");
    char tiny[3];
    TT_ASSERT_EQ_INT(ts_s3_ini_get(CRED_FILE, strlen(CRED_FILE), "dev", "aws_access_key_id", tiny, sizeof(tiny)), -1);
}

TT_TEST(creds_resolution_order)
{
    tt_tmpdir(g_dir, sizeof(g_dir), "s3creds");
    write_file("credentials", CRED_FILE);
    write_file("config", CONF_FILE);
    char credp[300], confp[300];
    snprintf(credp, sizeof(credp), "%s/credentials", g_dir);
    snprintf(confp, sizeof(confp), "%s/config", g_dir);
    char err[512];
    ts_s3_creds c;

    /* 1. Environment beats the files; region from AWS_REGION. */
    fake_env e1 = {{"AWS_SHARED_CREDENTIALS_FILE", credp, "AWS_CONFIG_FILE", confp,
                    "AWS_ACCESS_KEY_ID", "ENVID", "AWS_SECRET_ACCESS_KEY", "envsecret",
                    "AWS_SESSION_TOKEN", "envtoken", "AWS_REGION", "us-west-2", NULL}};
    TT_OKE(ts_s3_creds_resolve(NULL, fake_getenv, &e1, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.access_key_id, "ENVID");
    TT_ASSERT_STR(c.secret_access_key, "envsecret");
    TT_ASSERT_STR(c.session_token, "envtoken");
    TT_ASSERT_STR(c.region, "us-west-2");
    TT_ASSERT_STR(c.endpoint, "");

    /* 2. Config keys beat the environment. */
    ts_config *cfg = ts_config_create();
    TT_OK(ts_config_set(cfg, "aws.access.key.id", "CFGKEY", err, sizeof(err)));
    TT_OK(ts_config_set(cfg, "aws.secret.access.key", "cfgkeysecret", err, sizeof(err)));
    TT_OK(ts_config_set(cfg, "aws.region", "sa-east-1", err, sizeof(err)));
    TT_OK(ts_config_set(cfg, "aws.endpoint.url", "http://10.0.0.1:7480", err, sizeof(err)));
    TT_OKE(ts_s3_creds_resolve(cfg, fake_getenv, &e1, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.access_key_id, "CFGKEY");
    TT_ASSERT_STR(c.session_token, ""); /* never mixed with the env's token */
    TT_ASSERT_STR(c.region, "sa-east-1");
    TT_ASSERT_STR(c.endpoint, "http://10.0.0.1:7480");
    ts_config_destroy(cfg);

    /* 3. Shared credentials file [default]; region from the config file. */
    fake_env e2 = {{"AWS_SHARED_CREDENTIALS_FILE", credp, "AWS_CONFIG_FILE", confp, NULL}};
    TT_OKE(ts_s3_creds_resolve(NULL, fake_getenv, &e2, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.access_key_id, "DEFAULTID");
    TT_ASSERT_STR(c.secret_access_key, "defaultsecret");
    TT_ASSERT_STR(c.region, "eu-west-3");
    TT_ASSERT(strstr(c.source, "[default]") != NULL);

    /* 4. AWS_PROFILE=dev: keys + token from credentials, region and
     *    endpoint from [profile dev]; AWS_ENDPOINT_URL beats the file. */
    fake_env e3 = {{"AWS_SHARED_CREDENTIALS_FILE", credp, "AWS_CONFIG_FILE", confp,
                    "AWS_PROFILE", "dev", NULL}};
    TT_OKE(ts_s3_creds_resolve(NULL, fake_getenv, &e3, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.access_key_id, "DEVID");
    TT_ASSERT_STR(c.secret_access_key, "dev/secret+x");
    TT_ASSERT_STR(c.session_token, "devtoken");
    TT_ASSERT_STR(c.region, "ap-south-1");
    TT_ASSERT_STR(c.endpoint, "http://127.0.0.1:9000");
    fake_env e3b = {{"AWS_SHARED_CREDENTIALS_FILE", credp, "AWS_CONFIG_FILE", confp,
                     "AWS_PROFILE", "dev", "AWS_ENDPOINT_URL", "http://127.0.0.1:7480",
                     "AWS_DEFAULT_REGION", "eu-north-1", NULL}};
    TT_OKE(ts_s3_creds_resolve(NULL, fake_getenv, &e3b, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.endpoint, "http://127.0.0.1:7480");
    TT_ASSERT_STR(c.region, "eu-north-1");

    /* 5. Keys only in the config file's profile section. */
    fake_env e4 = {{"AWS_SHARED_CREDENTIALS_FILE", credp, "AWS_CONFIG_FILE", confp,
                    "AWS_PROFILE", "cfgonly", NULL}};
    TT_OKE(ts_s3_creds_resolve(NULL, fake_getenv, &e4, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.access_key_id, "CFGID");
    TT_ASSERT_STR(c.region, "us-east-1"); /* the default */

    /* 6. A profile with half a key pair, and nothing at all: clear errors
     *    that say where we looked, without secrets (with the instance
     *    metadata service off; on, it is the chain's last link). */
    fake_env e5 = {{"AWS_SHARED_CREDENTIALS_FILE", credp, "AWS_CONFIG_FILE", confp,
                    "AWS_PROFILE", "broken", "AWS_EC2_METADATA_DISABLED", "true", NULL}};
    TT_ASSERT_EQ_INT(ts_s3_creds_resolve(NULL, fake_getenv, &e5, &c, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, "[broken]") && strstr(err, "AWS_ACCESS_KEY_ID"));
    fake_env e6 = {{"HOME", g_dir, "AWS_EC2_METADATA_DISABLED", "true", NULL}};
    TT_ASSERT_EQ_INT(ts_s3_creds_resolve(NULL, fake_getenv, &e6, &c, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, "/.aws/credentials") != NULL);
    fake_env e6i = {{"HOME", g_dir, NULL}};
    TT_OKE(ts_s3_creds_resolve(NULL, fake_getenv, &e6i, &c, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(c.kind, TS_S3_CREDS_IMDS);
    TT_ASSERT(strstr(c.not_found, "/.aws/credentials") != NULL);

    /* 7. HOME/.aws/credentials is the default location. */
    char awsdir[300];
    snprintf(awsdir, sizeof(awsdir), "%s/.aws", g_dir);
    mkdir(awsdir, 0700);
    write_file(".aws/credentials", CRED_FILE);
    TT_OKE(ts_s3_creds_resolve(NULL, fake_getenv, &e6, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.access_key_id, "DEFAULTID");
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    TT_ASSERT(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(sigv4_get_object_range);
    TT_RUN(sigv4_put_object);
    TT_RUN(sigv4_get_bucket_lifecycle);
    TT_RUN(sigv4_list_objects);
    TT_RUN(sigv4_header_values_trimmed_and_folded);
    TT_RUN(sigv4_rejects_missing_fields);
    TT_RUN(uri_encode_rules);
    TT_RUN(digests);
    TT_RUN(xml_list_page);
    TT_RUN(xml_list_last_and_empty_pages);
    TT_RUN(xml_list_rejects_malformed);
    TT_RUN(xml_key_too_long);
    TT_RUN(xml_error_document);
    TT_RUN(xml_multipart_results);
    TT_RUN(xml_delete_result);
    TT_RUN(addr_path_style_with_endpoint);
    TT_RUN(addr_virtual_hosted);
    TT_RUN(addr_rejects_bad_urls);
    TT_RUN(ini_lookup);
    TT_RUN(creds_resolution_order);
    return tt_summary();
}
