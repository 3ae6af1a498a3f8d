/*
 * test_s3_compat.c — the S3 suite's interop: the AWS CLI reads what we wrote and we
 * read what it wrote (group interop), and TLS verification (group tls).
 *
 * The tls group also needs TS_S3_TEST_TLS_ENDPOINT (an https:// endpoint of
 * the same server) and TS_S3_TEST_CA_BUNDLE (the CA that signed it), which
 * tests/rgw/start.sh provides; without them it is skipped.
 *
 *   test_s3_compat [--group interop|tls] [test...]
 */
#include "s3_suite.h"

/* ------------------------------------------------------------------ interop */

TT_TEST(aws_cli_reads_what_we_wrote)
{
    if (access("/usr/bin/aws", X_OK)) {
        fprintf(stderr, "    /usr/bin/aws not installed; nothing to check against\n");
        TT_ASSERT(!"/usr/bin/aws missing (apt-get install awscli)");
    }
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, "s3.multipart.part.bytes=5242880", NULL);
    TT_CHECK(os);
    char dir[256];
    tt_tmpdir(dir, sizeof(dir), "s3interop");
    /* One single-PUT object and one multipart object. */
    size_t small = 123457;
    uint8_t *data = malloc(small);
    gen(7, 0, data, small);
    TT_CHECK_OKE(ts_objstore_put(os, "interop/small.bin", data, small, 0, err, sizeof(err)), err);
    ts_objstore_writer *w;
    uint64_t big = 13 * MiB + 5;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "interop/big.bin", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 8, big, 777777), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);

    char ls[512];
    snprintf(ls, sizeof(ls), "%s/ls.txt", dir);
    TT_CHECK_EQ_INT(sh("/usr/bin/aws --endpoint-url '%s' s3 ls 's3://%s/%s/interop/' > '%s'",
                       g_endpoint, g_bucket, g_prefix, ls),
                    0);
    uint8_t *txt;
    size_t tl;
    TT_CHECK_OKE(ts_fs_read_all(ls, 1 << 20, &txt, &tl, err, sizeof(err)), err);
    txt = realloc(txt, tl + 1);
    txt[tl] = 0;
    char want[128];
    snprintf(want, sizeof(want), "%zu small.bin", small);
    TT_CHECK_MSG(strstr((char *)txt, want) && strstr((char *)txt, "13631493 big.bin"),
                 "aws s3 ls output:\n%s", (char *)txt);
    free(txt);
    const char *names[2] = {"small.bin", "big.bin"};
    uint32_t seeds[2] = {7, 8};
    uint64_t sizes[2] = {small, big};
    for (int i = 0; i < 2; i++) {
        char local[512];
        snprintf(local, sizeof(local), "%s/%s", dir, names[i]);
        TT_CHECK_EQ_INT(
            sh("/usr/bin/aws --endpoint-url '%s' s3 cp --quiet 's3://%s/%s/interop/%s' '%s'",
               g_endpoint, g_bucket, g_prefix, names[i], local),
            0);
        uint8_t *got;
        size_t gl;
        TT_CHECK_OKE(ts_fs_read_all(local, 64 * MiB, &got, &gl, err, sizeof(err)), err);
        TT_CHECK_MSG(gl == sizes[i] && check_gen(seeds[i], 0, got, gl), "%s differs", names[i]);
        free(got);
    }
    /* And the other way round: what the AWS CLI uploads (multipart at its
     * 8 MiB threshold) we read back. */
    char up[512];
    snprintf(up, sizeof(up), "%s/up.bin", dir);
    FILE *f = fopen(up, "wb");
    uint8_t *chunk = malloc(MiB);
    for (int i = 0; i < 9; i++) {
        gen(9, (uint64_t)i * MiB, chunk, MiB);
        fwrite(chunk, 1, MiB, f);
    }
    fclose(f);
    free(chunk);
    TT_CHECK_EQ_INT(
        sh("/usr/bin/aws --endpoint-url '%s' s3 cp --quiet '%s' 's3://%s/%s/interop/from-cli.bin'",
           g_endpoint, up, g_bucket, g_prefix),
        0);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(ts_objstore_get(os, "interop/from-cli.bin", 0, TS_OBJSTORE_TO_END, &out, &n, err,
                                 sizeof(err)),
                 err);
    TT_CHECK(n == 9 * MiB && check_gen(9, 0, out, n));
    free(out);
    /* Aborted uploads leave no multipart upload behind. */
    TT_CHECK_OKE(ts_objstore_writer_open(os, "interop/aborted.bin", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 10, 11 * MiB, MiB), err);
    ts_objstore_writer_abort(w);
    char mpu[512];
    snprintf(mpu, sizeof(mpu), "%s/mpu.txt", dir);
    TT_CHECK_EQ_INT(
        sh("/usr/bin/aws --endpoint-url '%s' s3api list-multipart-uploads --bucket '%s' "
           "--prefix '%s/interop/' --output text > '%s'",
           g_endpoint, g_bucket, g_prefix, mpu),
        0);
    TT_CHECK_OKE(ts_fs_read_all(mpu, 1 << 20, &txt, &tl, err, sizeof(err)), err);
    txt = realloc(txt, tl + 1);
    txt[tl] = 0;
    TT_CHECK_MSG(!strstr((char *)txt, "aborted.bin"), "upload left behind:\n%s", (char *)txt);
    free(txt);
    free(data);
    sh("rm -rf '%s'", dir);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ tls */

TT_TEST(tls_verified_with_ca_bundle)
{
    const char *ep = getenv("TS_S3_TEST_TLS_ENDPOINT"), *ca = getenv("TS_S3_TEST_CA_BUNDLE");
    TT_ASSERT_MSG(ep && ca, "needs TS_S3_TEST_TLS_ENDPOINT and TS_S3_TEST_CA_BUNDLE");
    char ep_kv[600];
    snprintf(ep_kv, sizeof(ep_kv), "aws.endpoint.url=%s", ep);
    /* 1. The default: verification on, system CAs: a self-signed server is
     *    refused at once, without retries, and the message says why. */
    fixture fx;
    ts_objstore *os =
        fixture_open(&fx, open_store, ep_kv, "remote.storage.operation.timeout.ms=5000", NULL);
    TT_CHECK(os);
    ts_status st = ts_objstore_put(os, "tls/x", "x", 1, 0, err, sizeof(err));
    fprintf(stderr, "    without the CA: %s: %s\n", ts_status_name(st), err);
    TT_CHECK_EQ_INT(st, TS_E_REMOTE);
    TT_CHECK(strstr(err, "certificate") != NULL && strstr(err, "aws.ca.bundle") != NULL);
    TT_CHECK_EQ_INT(stats(os).requests, 1);
    /* 2. With the CA bundle: verified and working. */
    ts_config_set(fx.cfg, "aws.ca.bundle", ca, NULL, 0);
    os = fixture_reopen(&fx, open_store);
    TT_CHECK(os);
    TT_CHECK_OKE(ts_objstore_put(os, "tls/x", "over tls", 8, 0, err, sizeof(err)), err);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(ts_objstore_get(os, "tls/x", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)),
                 err);
    TT_CHECK(n == 8 && !memcmp(out, "over tls", 8));
    free(out);
    /* 3. Verification off (s3.tls.verify=false): works without the CA. */
    ts_config_set(fx.cfg, "aws.ca.bundle", "", NULL, 0);
    ts_config_set(fx.cfg, "s3.tls.verify", "false", NULL, 0);
    os = fixture_reopen(&fx, open_store);
    TT_CHECK(os);
    TT_CHECK_OKE(ts_objstore_head(os, "tls/x", &hsize, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(hsize, 8);
done:
    fixture_close(&fx);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    int rc = s3_suite_start(argc, argv);
    if (rc) return rc;
    if (GROUP("interop")) TT_RUN(aws_cli_reads_what_we_wrote);
    int have_tls = getenv("TS_S3_TEST_TLS_ENDPOINT") && getenv("TS_S3_TEST_CA_BUNDLE");
    if (g_group && !strcmp(g_group, "tls") && !have_tls) {
        printf("SKIP: set TS_S3_TEST_TLS_ENDPOINT and TS_S3_TEST_CA_BUNDLE (https endpoint of the "
               "same server and its CA; tests/rgw/start.sh provides them)\n");
        wipe_prefix();
        return 77;
    }
    if (GROUP("tls") && have_tls) TT_RUN(tls_verified_with_ca_bundle);
    wipe_prefix();
    return tt_summary();
}
