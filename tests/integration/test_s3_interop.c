/*
 * test_s3_interop.c — what the engine writes to S3 is readable by standard
 * tools: the AWS CLI (Debian's /usr/bin/aws) lists and downloads a segment
 * object, `zstd -d` turns it back into the original segment file byte for
 * byte, and a downloaded manifest is valid JSON naming that object.
 * Runs under on_s3.sh (TS_TEST_REMOTE_URL=s3://bucket/prefix, endpoint and
 * credentials in the AWS_* environment).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "gen.h"
#include "tierstore.h"
#include "tt.h"

static char g_dir[256], g_url[700], g_bucket[256], g_prefix[512];

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc) fprintf(stderr, "    command failed (%d): %s\n", rc, cmd);
    return rc;
}

TT_TEST(aws_cli_and_zstd_read_engine_objects)
{
    const char *ep = getenv("AWS_ENDPOINT_URL");
    TT_ASSERT_MSG(ep && *ep, "AWS_ENDPOINT_URL is not set");
    TT_ASSERT_MSG(access("/usr/bin/aws", X_OK) == 0, "/usr/bin/aws missing (apt-get install awscli)");
    char err[1024], data[400];
    snprintf(data, sizeof(data), "%s/data", g_dir);
    ts_config *c = ts_config_create();
    ts_config_set(c, "log.dirs", data, NULL, 0);
    ts_config_set(c, "remote.storage.url", g_url, NULL, 0);
    ts_config_set(c, "log.segment.bytes", "1048576", NULL, 0);
    ts_config_set(c, "remote.storage.chunk.bytes", "262144", NULL, 0);
    ts_config_set(c, "message.max.bytes", "8388608", NULL, 0);
    ts_config_set(c, "log.retention.ms", "-1", NULL, 0); /* the data is timestamped 2023 */
    ts_engine *eng;
    TT_OKE(ts_engine_open(c, &eng, err, sizeof(err)), err);
    ts_partition *p;
    TT_OKE(ts_partition_open(eng, "interop", 0, 1, &p, err, sizeof(err)), err);
    for (uint64_t k = 0; k < 120; k++) {
        size_t len;
        uint8_t *b = gen_batch(0, k, 1700000000000LL, &len, NULL);
        TT_OKE(ts_partition_append(p, b, len, NULL, NULL, err, sizeof(err)), err);
        free(b);
    }
    TT_OKE(ts_partition_roll(p, err, sizeof(err)), err);
    TT_OKE(ts_partition_wait_uploaded(p, 120000, err, sizeof(err)), err);
    ts_segment_info *rows;
    size_t n;
    TT_OKE(ts_partition_placement(p, &rows, &n, err, sizeof(err)), err);
    TT_ASSERT(n >= 2 && rows[0].location == TS_LOC_LOCAL_REMOTE);
    char key[600], seg[600], obj[600], out[600], lst[600];
    snprintf(key, sizeof(key), "%s", rows[0].object_key);
    snprintf(seg, sizeof(seg), "%s/interop-0/%020lld.log", data, (long long)rows[0].base_offset);
    free(rows);
    snprintf(obj, sizeof(obj), "%s/object.zst", g_dir);
    snprintf(out, sizeof(out), "%s/object.log", g_dir);
    snprintf(lst, sizeof(lst), "%s/ls.txt", g_dir);
    /* Listed and downloaded by the AWS CLI; zstd -d gives the segment back. */
    TT_ASSERT_EQ_INT(sh("/usr/bin/aws --endpoint-url '%s' s3 ls --recursive 's3://%s/%s/interop/0/' "
                        "> '%s'", ep, g_bucket, g_prefix, lst), 0);
    TT_ASSERT_EQ_INT(sh("grep -q '%s' '%s'", strrchr(key, '/') + 1, lst), 0);
    TT_ASSERT_EQ_INT(sh("/usr/bin/aws --endpoint-url '%s' s3 cp --quiet 's3://%s/%s/%s' '%s'", ep,
                        g_bucket, g_prefix, key, obj), 0);
    TT_ASSERT_EQ_INT(sh("zstd -q -d -c '%s' > '%s' && cmp -s '%s' '%s'", obj, out, out, seg), 0);
    /* The newest manifest: valid JSON that names the object. */
    TT_ASSERT_EQ_INT(sh("/usr/bin/aws --endpoint-url '%s' s3 cp --quiet --recursive "
                        "'s3://%s/%s/interop/0/manifests/' '%s/manifests/'", ep, g_bucket,
                        g_prefix, g_dir), 0);
    TT_ASSERT_EQ_INT(sh("m=$(ls '%s/manifests/' | sort | tail -1) && "
                        "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                        "assert any(s[\"object_key\"] == sys.argv[2] for s in d[\"segments\"])' "
                        "'%s/manifests/'\"$m\" '%s'", g_dir, g_dir, key), 0);
    ts_engine_close(eng);
    ts_config_destroy(c);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    const char *url = getenv("TS_TEST_REMOTE_URL");
    if (!url || strncmp(url, "s3://", 5)) {
        fprintf(stderr, "test_s3_interop: TS_TEST_REMOTE_URL=s3://bucket/prefix required (skipped)\n");
        return 77;
    }
    tt_tmpdir(g_dir, sizeof(g_dir), "s3interop");
    /* s3://bucket/prefix -> bucket, prefix/<run> */
    const char *b = url + 5, *slash = strchr(b, '/');
    snprintf(g_bucket, sizeof(g_bucket), "%.*s", (int)(slash ? slash - b : (long)strlen(b)), b);
    snprintf(g_prefix, sizeof(g_prefix), "%s%sinterop-%s", slash ? slash + 1 : "",
             slash ? "/" : "", strrchr(g_dir, '-') + 1);
    snprintf(g_url, sizeof(g_url), "s3://%s/%s", g_bucket, g_prefix);
    TT_RUN(aws_cli_and_zstd_read_engine_objects);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_dir, NULL, 0);
    return tt_summary();
}
