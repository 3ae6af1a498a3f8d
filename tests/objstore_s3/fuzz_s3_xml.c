/*
 * fuzz_s3_xml.c — libFuzzer target for the S3 response parsers (s3_xml.c),
 * the shared-file INI reader (s3_creds.c), and the credential sources'
 * documents (IMDS JSON and ISO 8601 times, s3_imds.c; STS XML, s3_sts.c):
 * any bytes a server, a proxy or a credentials file can hand us. The input is copied into an exact-size
 * heap buffer with no NUL, so ASan catches any read past the slice.
 *
 *   CC=clang cmake -S . -B build-fuzz -DTS_FUZZ=ON && make -C build-fuzz fuzz_s3_xml
 *   build-fuzz/tests/objstore_s3/fuzz_s3_xml -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objstore/s3_creds.h"
#include "objstore/s3_provider.h"
#include "objstore/s3_xml.h"

static int on_key(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    (*(size_t *)opaque) += strlen(key);
    return 0;
}

static void on_del(const char *key, const char *code, const char *msg, void *opaque)
{
    (*(size_t *)opaque) += strlen(key) + strlen(code) + strlen(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p) return 0;
    memcpy(p, data, size);
    size_t sink = 0, n;
    int stopped, truncated;
    char token[256], code[64], msg[128], id[128], val[64];
    ts_s3_xml_parse_list(p, size, on_key, &sink, &stopped, &truncated, token, sizeof(token), &n);
    ts_s3_xml_parse_error(p, size, code, sizeof(code), msg, sizeof(msg));
    ts_s3_xml_parse_upload_id(p, size, id, sizeof(id));
    ts_s3_xml_parse_complete(p, size);
    ts_s3_xml_parse_delete(p, size, on_del, &sink, &n);
    ts_s3_ini_get(p, size, "default", "aws_access_key_id", val, sizeof(val));
    ts_s3_ini_get(p, size, "profile dev", "region", val, sizeof(val));
    static ts_s3_keys k;
    char e[256];
    ts_s3_imds_parse(p, size, &k, e, sizeof(e));
    ts_s3_sts_parse(p, size, &k, e, sizeof(e));
    ts_s3_sts_parse_error(p, size, code, sizeof(code), msg, sizeof(msg));
    ts_s3_json_get(p, size, "Expiration", val, sizeof(val));
    if (size < 64) {
        char t[64];
        memcpy(t, p, size);
        t[size] = '\0';
        ts_s3_parse_iso8601(t);
    }
    free(p);
    return 0;
}
