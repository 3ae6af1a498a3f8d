/*
 * test_s3_creds.c — S3 credentials that expire: the chain's order, IMDSv2,
 * STS AssumeRoleWithWebIdentity, refresh ahead of expiry, failing and
 * recovering refreshes, and many threads signing while keys change.
 *
 * No real instance metadata service or STS exists here: credsim.py (a test
 * double, see its header) plays both, and a minimal S3 stand-in that only
 * checks that each request carries keys it handed out and that have not
 * expired. `--rgw` and `--rgw-sts` run against a real Ceph RGW instead
 * (ctest s3.creds_imds and s3.creds_sts, label s3; skipped without one):
 * see rgw_main.
 *
 * Timings are never asserted; waits are bounded loops on observable state.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "objstore/s3.h"
#include "objstore/s3_creds.h"
#include "objstore/s3_provider.h"
#include "tt.h"
#include "tt_proc.h"

static char err[4096];
static char g_dir[256];

/* ------------------------------------------------------------ the simulator */

static pid_t g_sim_pid = -1;
static int g_sim_port;
static char g_sim_url[64];

static int sim_start(void)
{
    char e[256];
    if (tt_proc_start((char *[]){"/usr/bin/python3", TS_CREDSIM, NULL}, &g_sim_pid, &g_sim_port, e,
                      sizeof(e))) {
        fprintf(stderr, "    %s\n", e);
        return -1;
    }
    snprintf(g_sim_url, sizeof(g_sim_url), "http://127.0.0.1:%d", g_sim_port);
    return 0;
}

static void sim_stop(void) { tt_proc_stop(&g_sim_pid); }

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    ts_buf_append(ud, p, s * n);
    return s * n;
}

/* GET path on the simulator with or without extra headers; returns the HTTP
 * status (0 = no answer) and leaves the body in out (NUL-terminated). */
static long sim_http(const char *path, const char *hdr, char *out, size_t outlen)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", g_sim_url, path);
    CURL *h = curl_easy_init();
    ts_buf b;
    ts_buf_init(&b, 1 << 20);
    struct curl_slist *hl = hdr ? curl_slist_append(NULL, hdr) : NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (hl) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (out && outlen) {
        size_t n = b.len < outlen - 1 ? b.len : outlen - 1;
        if (n) memcpy(out, b.data, n);
        out[n] = '\0';
    }
    curl_slist_free_all(hl);
    ts_buf_free(&b);
    curl_easy_cleanup(h);
    return status;
}

static int sim_set(const char *query)
{
    char path[512];
    snprintf(path, sizeof(path), "/__sim__/set?%s", query);
    return sim_http(path, NULL, NULL, 0) == 200 ? 0 : -1;
}

/* A counter or string of /__sim__/stats. */
static long sim_stat(const char *name, char *sval, size_t svlen)
{
    static char body[65536];
    if (sim_http("/__sim__/stats", NULL, body, sizeof(body)) != 200) return -1;
    size_t nl = strlen(name);
    for (char *l = body; *l;) {
        char *e = strchr(l, '\n');
        if (!e) break;
        *e = '\0';
        if (!strncmp(l, name, nl) && l[nl] == ' ') {
            if (sval) snprintf(sval, svlen, "%s", l + nl + 1);
            return strtol(l + nl + 1, NULL, 10);
        }
        l = e + 1;
    }
    return -1;
}

/* ------------------------------------------------------------ environment */

static const char *const AWS_VARS[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_STS", "AWS_CA_BUNDLE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME", "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS", NULL};

/* A clean slate: no AWS variable, shared files that do not exist, and the
 * simulator as S3 endpoint. Only called while no other thread runs. */
static void env_reset(void)
{
    for (int i = 0; AWS_VARS[i]; i++) unsetenv(AWS_VARS[i]);
    char p[400];
    snprintf(p, sizeof(p), "%s/no-credentials", g_dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    snprintf(p, sizeof(p), "%s/no-config", g_dir);
    setenv("AWS_CONFIG_FILE", p, 1);
    setenv("HOME", g_dir, 1);
    setenv("AWS_ENDPOINT_URL_S3", g_sim_url, 1);
    setenv("AWS_REGION", "us-east-1", 1);
}

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char *dir_path(const char *name)
{
    static char p[8][512];
    static int n;
    char *out = p[n++ % 8];
    snprintf(out, 512, "%s/%s", g_dir, name);
    return out;
}

static ts_objstore *open_store(int64_t op_timeout_ms, ts_status *st_out)
{
    ts_config *cfg = ts_config_create();
    char v[32];
    ts_config_set(cfg, "remote.storage.request.timeout.ms", "5000", NULL, 0);
    snprintf(v, sizeof(v), "%lld", (long long)op_timeout_ms);
    ts_config_set(cfg, "remote.storage.operation.timeout.ms", v, NULL, 0);
    ts_objstore *os = NULL;
    err[0] = '\0';
    ts_status st = ts_objstore_s3_open("s3://bucket/prefix/", cfg, &os, err, sizeof(err));
    ts_config_destroy(cfg);
    if (st_out) *st_out = st;
    return os;
}

static ts_status get_one(ts_objstore *os, char *e, size_t elen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_status st = ts_objstore_get(os, "k", 0, TS_OBJSTORE_TO_END, &data, &len, e, elen);
    free(data);
    return st;
}

static void use_imds(void)
{
    env_reset();
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", g_sim_url, 1);
}

static void use_web_identity(const char *token)
{
    env_reset();
    write_file("token", token);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", dir_path("token"), 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/tierstore", 1);
    setenv("AWS_ROLE_SESSION_NAME", "test-session", 1);
    setenv("AWS_ENDPOINT_URL_STS", g_sim_url, 1);
}

static int no_secret_in(const char *s)
{
    return !strstr(s, "simsecret") && !strstr(s, "simtoken") && !strstr(s, "imdstoken") &&
           !strstr(s, "web-token");
}

/* ----------------------------------------------------------- parsers */

TT_TEST(json_documents)
{
    static const char doc[] = "{ \"Code\" : \"Success\", \"Nested\": {\"AccessKeyId\": \"no\", "
                              "\"a\": [1, \"}\", {}]}, \"N\": 12, \"T\": true,\n"
                              "\"AccessKeyId\" : \"AKID\", \"Esc\": \"a\\\"b\\\\c\\u00e9\\/\" }";
    char v[64];
    TT_ASSERT_EQ_INT(ts_s3_json_get(doc, strlen(doc), "AccessKeyId", v, sizeof(v)), 0);
    TT_ASSERT_STR(v, "AKID"); /* not the nested one */
    TT_ASSERT_EQ_INT(ts_s3_json_get(doc, strlen(doc), "Esc", v, sizeof(v)), 0);
    TT_ASSERT_STR(v, "a\"b\\c\xc3\xa9/");
    TT_ASSERT_EQ_INT(ts_s3_json_get(doc, strlen(doc), "N", v, sizeof(v)), -1); /* not a string */
    TT_ASSERT_EQ_INT(ts_s3_json_get(doc, strlen(doc), "Missing", v, sizeof(v)), -1);
    char tiny[3];
    TT_ASSERT_EQ_INT(ts_s3_json_get(doc, strlen(doc), "AccessKeyId", tiny, sizeof(tiny)), -1);
    /* Cut short anywhere: never found past the end, never a crash. */
    for (size_t n = 0; n < strlen(doc) - 1; n++)
        TT_ASSERT_MSG(ts_s3_json_get(doc, n, "AccessKeyId", v, sizeof(v)) == -1, "cut at %zu", n);
    static const char *bad[] = {"", "[]", "{\"a\"}", "{\"a\":\"\\q\"}", "{\"a\":\"x\ny\"}",
                                "{\"AccessKeyId\":\"\\u12\"}", NULL};
    for (int i = 0; bad[i]; i++)
        TT_ASSERT_MSG(ts_s3_json_get(bad[i], strlen(bad[i]), "AccessKeyId", v, sizeof(v)) == -1,
                      "accepted %s", bad[i]);
}

TT_TEST(iso8601_times)
{
    TT_ASSERT_EQ_INT(ts_s3_parse_iso8601("1970-01-01T00:00:10Z"), 10000);
    TT_ASSERT_EQ_INT(ts_s3_parse_iso8601("2026-12-02T05:00:00Z"), 1796187600000LL);
    TT_ASSERT_EQ_INT(ts_s3_parse_iso8601("2026-12-02T05:00:00.25Z"), 1796187600250LL);
    TT_ASSERT_EQ_INT(ts_s3_parse_iso8601("2026-12-02T05:00:00+00:00"), 1796187600000LL);
    static const char *bad[] = {"", "2026-12-02", "2026-13-02T05:00:00Z", "2026-12-02T05:00:00",
                                "2026-12-02T05:00:00+02:00", "2026-12-02T05:00:00.Z",
                                "2026-12-02 05:00:00Z", NULL};
    for (int i = 0; bad[i]; i++)
        TT_ASSERT_MSG(ts_s3_parse_iso8601(bad[i]) == -1, "accepted %s", bad[i]);
}

TT_TEST(imds_and_sts_documents)
{
    ts_s3_keys k;
    memset(&k, 0, sizeof(k));
    static const char imds[] = "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIA1\","
                               "\"SecretAccessKey\":\"sec/ret\",\"Token\":\"tok\","
                               "\"Expiration\":\"2026-12-02T05:00:00Z\"}";
    TT_OKE(ts_s3_imds_parse(imds, strlen(imds), &k, err, sizeof(err)), err);
    TT_ASSERT_STR(k.access_key_id, "ASIA1");
    TT_ASSERT_STR(k.secret_access_key, "sec/ret");
    TT_ASSERT_STR(k.session_token, "tok");
    TT_ASSERT_EQ_INT(k.expires_ms, 1796187600000LL);
    static const char notready[] = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no\"}";
    TT_ASSERT_EQ_INT(ts_s3_imds_parse(notready, strlen(notready), &k, err, sizeof(err)), TS_E_AUTH);
    TT_ASSERT(strstr(err, "AssumeRoleUnauthorizedAccess") != NULL);
    static const char noexp[] = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"soon\"}";
    TT_ASSERT_EQ_INT(ts_s3_imds_parse(noexp, strlen(noexp), &k, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(no_secret_in(err) && !strstr(err, "\"S\""));

    static const char sts[] =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials><SessionToken>FwoG&amp;x</SessionToken>"
        "<SecretAccessKey>s&lt;cret</SecretAccessKey><Expiration>2026-12-02T05:00:00Z</Expiration>"
        "<AccessKeyId>ASIA2</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResponse>";
    TT_OKE(ts_s3_sts_parse(sts, strlen(sts), &k, err, sizeof(err)), err);
    TT_ASSERT_STR(k.access_key_id, "ASIA2");
    TT_ASSERT_STR(k.secret_access_key, "s<cret");
    TT_ASSERT_STR(k.session_token, "FwoG&x");
    for (size_t n = 0; n < strlen(sts) - 40; n += 7)
        TT_ASSERT_MSG(ts_s3_sts_parse(sts, n, &k, err, sizeof(err)) == TS_E_CORRUPT, "cut at %zu", n);
    static const char e[] = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                            "<Message>Not authorized</Message></Error></ErrorResponse>";
    char code[64], msg[64];
    TT_ASSERT_EQ_INT(ts_s3_sts_parse_error(e, strlen(e), code, sizeof(code), msg, sizeof(msg)), 1);
    TT_ASSERT_STR(code, "AccessDenied");
    TT_ASSERT_STR(msg, "Not authorized");
}

TT_TEST(refresh_schedule)
{
    int64_t r, u;
    const int64_t t = 1796187600000LL, min = 60000;
    /* An hour: refreshed 5 minutes ahead, used until 10 s before. */
    ts_s3_provider_schedule(t, t + 60 * min, &r, &u);
    TT_ASSERT_EQ_INT(r, t + 55 * min);
    TT_ASSERT_EQ_INT(u, t + 60 * min - 10000);
    /* 15 minutes: at 80%. 2 seconds: at 1.6 s, used until 1.8 s. */
    ts_s3_provider_schedule(t, t + 15 * min, &r, &u);
    TT_ASSERT_EQ_INT(r, t + 12 * min);
    ts_s3_provider_schedule(t, t + 2000, &r, &u);
    TT_ASSERT_EQ_INT(r, t + 1600);
    TT_ASSERT_EQ_INT(u, t + 1800);
    /* Static keys: never. */
    ts_s3_provider_schedule(t, 0, &r, &u);
    TT_ASSERT(r == INT64_MAX && u == INT64_MAX);
}

/* ----------------------------------------------------------- the chain */

TT_TEST(chain_order)
{
    ts_s3_creds c;
    write_file("token", "web-token-1\n");
    write_file("chain-credentials", "[default]\naws_access_key_id = FILEID\n"
                                    "aws_secret_access_key = filesecret\n");
    write_file("chain-config", "[default]\nrole_arn = arn:aws:iam::1:role/fromprofile\n"
                               "web_identity_token_file = /var/run/token\n"
                               "[profile half]\nweb_identity_token_file = /x\n"
                               "[profile assume]\nrole_arn = arn:aws:iam::1:role/a\n"
                               "source_profile = default\n"
                               "[profile v6]\nec2_metadata_service_endpoint_mode = IPv6\n");
    env_reset();
    setenv("AWS_SHARED_CREDENTIALS_FILE", dir_path("chain-credentials"), 1);
    setenv("AWS_CONFIG_FILE", dir_path("chain-config"), 1);
    unsetenv("AWS_ENDPOINT_URL_S3");

    /* The environment's keys beat a web identity. */
    setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/env", 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", dir_path("token"), 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(c.kind, TS_S3_CREDS_STATIC);
    TT_ASSERT_STR(c.access_key_id, "ENVID");

    /* A web identity beats the shared files; the environment's settings beat
     * the profile's, per setting; STS is regional unless overridden. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_REGION", "eu-central-1", 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(c.kind, TS_S3_CREDS_WEB_IDENTITY);
    TT_ASSERT_STR(c.role_arn, "arn:aws:iam::1:role/env");
    TT_ASSERT_STR(c.web_identity_token_file, dir_path("token"));
    TT_ASSERT_STR(c.sts_endpoint, "https://sts.eu-central-1.amazonaws.com");
    TT_ASSERT(strstr(c.source, "arn:aws:iam::1:role/env") != NULL);
    setenv("AWS_ENDPOINT_URL", "http://10.0.0.1:7480", 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.sts_endpoint, "http://10.0.0.1:7480");
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.sts_endpoint, "http://127.0.0.1:1");

    /* From the profile of the config file. */
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(c.kind, TS_S3_CREDS_WEB_IDENTITY);
    TT_ASSERT_STR(c.role_arn, "arn:aws:iam::1:role/fromprofile");
    TT_ASSERT_STR(c.web_identity_token_file, "/var/run/token");

    /* Half a web identity is an error naming what is missing. */
    setenv("AWS_PROFILE", "half", 1);
    TT_ASSERT_EQ_INT(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT_MSG(strstr(err, "web_identity_token_file") && strstr(err, "AWS_ROLE_ARN"), "%s", err);

    /* role_arn + source_profile (AssumeRole) is not a web identity: the
     * profile has no keys, so the chain ends at IMDS. */
    setenv("AWS_PROFILE", "assume", 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(c.kind, TS_S3_CREDS_IMDS);
    TT_ASSERT_STR(c.imds_endpoint, "http://169.254.169.254");
    TT_ASSERT_EQ_INT(c.imds_timeout_ms, 1000);
    TT_ASSERT_EQ_INT(c.imds_attempts, 1);

    /* The shared credentials file beats IMDS. */
    setenv("AWS_PROFILE", "default", 1);
    setenv("AWS_CONFIG_FILE", dir_path("no-config"), 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(c.kind, TS_S3_CREDS_STATIC);
    TT_ASSERT_STR(c.access_key_id, "FILEID");

    /* IMDS settings; and IMDS off leaves nothing. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", dir_path("no-credentials"), 1);
    setenv("AWS_CONFIG_FILE", dir_path("chain-config"), 1);
    setenv("AWS_PROFILE", "v6", 1);
    setenv("AWS_METADATA_SERVICE_TIMEOUT", "2", 1);
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3", 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(c.kind, TS_S3_CREDS_IMDS);
    TT_ASSERT_STR(c.imds_endpoint, "http://[fd00:ec2::254]");
    TT_ASSERT_EQ_INT(c.imds_timeout_ms, 2000);
    TT_ASSERT_EQ_INT(c.imds_attempts, 3);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/", 1);
    TT_OKE(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), err);
    TT_ASSERT_STR(c.imds_endpoint, "http://127.0.0.1:9");
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    TT_ASSERT_EQ_INT(ts_s3_creds_resolve(NULL, NULL, NULL, &c, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT_MSG(strstr(err, "AWS_EC2_METADATA_DISABLED=true") &&
                      strstr(err, "AWS_WEB_IDENTITY_TOKEN_FILE"),
                  "%s", err);
}

/* ----------------------------------------------------------- IMDSv2 */

TT_TEST(imds_keys_sign_requests)
{
    use_imds();
    ts_status st;
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT_MSG(os, "open: %s", err);
    char e[2048];
    ts_status g = get_one(os, e, sizeof(e));
    ts_objstore_destroy(os);
    TT_OKE(g, e);
    TT_ASSERT_EQ_INT(sim_stat("token_puts", NULL, 0), 1);
    TT_ASSERT_EQ_INT(sim_stat("imds_creds", NULL, 0), 1);
    TT_ASSERT_EQ_INT(sim_stat("v1_rejected", NULL, 0), 0);
    TT_ASSERT_EQ_INT(sim_stat("s3_ok", NULL, 0), 1); /* signed with the IMDS keys and token */
    /* The double refuses IMDSv1: what the client sent was v2. */
    TT_ASSERT_EQ_INT(sim_http("/latest/meta-data/iam/security-credentials/", NULL, NULL, 0), 401);
    TT_ASSERT_EQ_INT(sim_stat("v1_rejected", NULL, 0), 1);
}

TT_TEST(imds_no_role_and_lapsed_session_token)
{
    /* No role attached: a clear error at open. */
    use_imds();
    TT_ASSERT(sim_set("role=") == 0);
    ts_status st;
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT(sim_set("role=tierstore-role") == 0);
    TT_ASSERT(os == NULL);
    TT_ASSERT_EQ_INT(st, TS_E_CONFIG);
    TT_ASSERT_MSG(strstr(err, "no IAM role") && strstr(err, "instance metadata service"), "%s", err);

    /* The session token lapses (1 s) before the keys do (2 s): the refresh
     * meets 401 and gets a new token. */
    TT_ASSERT(sim_set("token_ttl=1&lifetime=2") == 0);
    os = open_store(5000, &st);
    TT_ASSERT_MSG(os, "open: %s", err);
    long puts0 = sim_stat("token_puts", NULL, 0), creds0 = sim_stat("imds_creds", NULL, 0);
    char e[2048] = "";
    ts_status g = TS_OK;
    for (int i = 0; i < 100 && !g && sim_stat("imds_creds", NULL, 0) < creds0 + 1; i++) {
        ts_sleep_ms(100);
        g = get_one(os, e, sizeof(e));
    }
    ts_objstore_destroy(os);
    TT_ASSERT(sim_set("token_ttl=21600&lifetime=3600") == 0);
    TT_OKE(g, e);
    TT_ASSERT(sim_stat("imds_creds", NULL, 0) >= creds0 + 1);
    TT_ASSERT(sim_stat("bad_token", NULL, 0) >= 1);
    TT_ASSERT(sim_stat("token_puts", NULL, 0) >= puts0 + 1);
}

/* A loopback port nothing listens on, and one that accepts connections
 * (kernel backlog) but never answers. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static int silent_listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static int pending_connections(int lfd)
{
    int n = 0, c;
    while ((c = accept(lfd, NULL, NULL)) >= 0) {
        n++;
        close(c);
    }
    return n;
}

TT_TEST(imds_unreachable)
{
    char ep[64];
    ts_status st;
    /* Nothing listening: refused at once. */
    use_imds();
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", closed_port());
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT(os == NULL);
    TT_ASSERT_EQ_INT(st, TS_E_CONFIG);
    TT_ASSERT_MSG(strstr(err, "no S3 credentials found") && strstr(err, ep) &&
                      strstr(err, "AWS_EC2_METADATA_DISABLED=true"),
                  "%s", err);

    /* Accepts, never answers: given up after the 1 s request cap, once. */
    int port, lfd = silent_listener(&port);
    TT_ASSERT(lfd >= 0);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
    int64_t t0 = ts_mono_ms();
    os = open_store(5000, &st);
    int64_t took = ts_mono_ms() - t0;
    int conns = pending_connections(lfd);
    fprintf(stderr, "    (a silent IMDS cost %lld ms at open)\n", (long long)took);
    TT_CHECK(os == NULL);
    TT_CHECK_EQ_INT(st, TS_E_CONFIG);
    TT_CHECK_MSG(strstr(err, "no answer within 1000 ms"), "%s", err);
    TT_CHECK_EQ_INT(conns, 1); /* AWS_METADATA_SERVICE_NUM_ATTEMPTS defaults to 1 */

    /* Static keys never reach IMDS; neither does a disabled IMDS. */
    setenv("AWS_ACCESS_KEY_ID", "STATICID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "staticsecret", 1);
    os = open_store(5000, &st);
    TT_CHECK_MSG(os != NULL, "%s", err);
    ts_objstore_destroy(os);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    os = open_store(5000, &st);
    TT_CHECK(os == NULL);
    TT_CHECK_EQ_INT(st, TS_E_CONFIG);
    TT_CHECK_EQ_INT(pending_connections(lfd), 0);
done:
    close(lfd);
}

/* ----------------------------------------------------------- web identity */

TT_TEST(web_identity_keys_and_token_rotation)
{
    use_web_identity("web-token-1");
    TT_ASSERT(sim_set("lifetime=2") == 0);
    ts_status st;
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT_MSG(os, "open: %s", err);
    char tok[256] = "", sess[128] = "", e[2048] = "";
    long calls0 = sim_stat("sts_calls", NULL, 0);
    sim_stat("web_token", tok, sizeof(tok));
    sim_stat("session_name", sess, sizeof(sess));
    ts_status g = get_one(os, e, sizeof(e));
    /* The kubelet rotates the token file; the next refresh sends the new one. */
    write_file("token", "web-token-2\n");
    for (int i = 0; i < 100 && !g && sim_stat("sts_calls", NULL, 0) < calls0 + 1; i++) {
        ts_sleep_ms(100);
        g = get_one(os, e, sizeof(e));
    }
    char tok2[256] = "";
    sim_stat("web_token", tok2, sizeof(tok2));
    ts_objstore_destroy(os);
    TT_ASSERT(sim_set("lifetime=3600") == 0);
    TT_OKE(g, e);
    TT_ASSERT_STR(tok, "web-token-1");
    TT_ASSERT_STR(sess, "test-session");
    TT_ASSERT_STR(tok2, "web-token-2");
    TT_ASSERT_EQ_INT(sim_stat("s3_unknown", NULL, 0), 0);
}

TT_TEST(sts_errors_name_the_role)
{
    ts_status st;
    use_web_identity("web-token-1");
    /* The role does not trust us. */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/someone-else", 1);
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT(os == NULL);
    TT_ASSERT_EQ_INT(st, TS_E_AUTH);
    TT_ASSERT_MSG(strstr(err, "arn:aws:iam::123456789012:role/someone-else") &&
                      strstr(err, "AccessDenied") && strstr(err, "trust policy"),
                  "%s", err);
    TT_ASSERT(no_secret_in(err));

    /* STS rejects the token itself. */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/tierstore", 1);
    TT_ASSERT(sim_set("sts_error=InvalidIdentityToken:400") == 0);
    os = open_store(5000, &st);
    TT_ASSERT(os == NULL);
    TT_ASSERT_EQ_INT(st, TS_E_AUTH);
    TT_ASSERT_MSG(strstr(err, "InvalidIdentityToken") && strstr(err, "role/tierstore"), "%s", err);

    /* Throttling is worth retrying. */
    TT_ASSERT(sim_set("sts_error=Throttling:400") == 0);
    os = open_store(5000, &st);
    TT_ASSERT(sim_set("sts_error=") == 0);
    TT_ASSERT(os == NULL);
    TT_ASSERT_EQ_INT(st, TS_E_REMOTE_RETRIABLE);

    /* No token file. */
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", dir_path("no-such-token"), 1);
    os = open_store(5000, &st);
    TT_ASSERT(os == NULL);
    TT_ASSERT_EQ_INT(st, TS_E_CONFIG);
    TT_ASSERT_MSG(strstr(err, "no-such-token"), "%s", err);
}

/* ----------------------------------------------------------- refresh */

TT_TEST(refresh_before_expiry)
{
    /* 2-second keys, requests every 50 ms for 3.5 s: every request must carry
     * keys the double still accepts, so refreshes happen ahead of expiry. */
    use_imds();
    TT_ASSERT(sim_set("lifetime=2") == 0);
    ts_status st;
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT_MSG(os, "open: %s", err);
    long creds0 = sim_stat("imds_creds", NULL, 0), expired0 = sim_stat("s3_expired", NULL, 0);
    int64_t t0 = ts_mono_ms();
    int n = 0, failed = 0;
    char e[2048] = "";
    while (ts_mono_ms() - t0 < 3500) {
        if (get_one(os, e, sizeof(e))) failed++;
        n++;
        ts_sleep_ms(50);
    }
    int64_t span = ts_mono_ms() - t0;
    uint64_t fetches, failures;
    ts_objstore_s3_creds_stats(os, &fetches, &failures);
    ts_objstore_destroy(os);
    TT_ASSERT(sim_set("lifetime=3600") == 0);
    long creds = sim_stat("imds_creds", NULL, 0) - creds0;
    long expired = sim_stat("s3_expired", NULL, 0) - expired0;
    fprintf(stderr, "    (%d requests over %lld ms, %ld refreshes, %ld ExpiredToken answers)\n", n,
            (long long)span, creds, expired);
    TT_ASSERT_MSG(failed == 0, "%d of %d requests failed, last: %s", failed, n, e);
    /* Keys live at most 3 s (Expiration is rounded up to the second): a
     * span this long cannot have been served by fewer new sets. */
    TT_ASSERT_MSG(creds >= span / 3000, "%ld refreshes in %lld ms", creds, (long long)span);
    TT_ASSERT_EQ_INT((long)fetches, creds + 1);
    TT_ASSERT_EQ_INT((long)failures, 0);
}

TT_TEST(revoked_keys_are_refreshed_once)
{
    use_imds();
    ts_status st;
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT_MSG(os, "open: %s", err);
    long creds0 = sim_stat("imds_creds", NULL, 0);
    TT_ASSERT(sim_set("revoke=1") == 0); /* S3 now says ExpiredToken to the current keys */
    char e[2048] = "";
    ts_status g = get_one(os, e, sizeof(e));
    ts_objstore_destroy(os);
    TT_OKE(g, e);
    TT_ASSERT_EQ_INT(sim_stat("imds_creds", NULL, 0), creds0 + 1);
}

TT_TEST(failed_refresh_keeps_valid_keys_then_expires_then_recovers)
{
    use_web_identity("web-token-1");
    TT_ASSERT(sim_set("lifetime=3") == 0);
    ts_objstore_s3_set_creds_backoff(100, 400);
    /* Everything logged meanwhile, at debug level, goes to a file that is
     * searched for secrets at the end. */
    char logpath[512];
    snprintf(logpath, sizeof(logpath), "%s/refresh.log", g_dir);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
    TT_ASSERT(logfd >= 0 && saved >= 0);
    ts_log_level lvl = ts_log_get_level();
    ts_log_set_level(TS_LOG_DEBUG);
    fflush(stderr);
    dup2(logfd, 2);
    close(logfd);
    ts_status st;
    ts_objstore *os = open_store(1500, &st);
    ts_objstore_s3_set_creds_backoff(0, 0);
    TT_ASSERT_MSG(os, "open: %s", err);
    TT_ASSERT(sim_set("fail=-1") == 0); /* STS answers 500 from now on */
    char e[2048] = "", expired_err[2048] = "";
    int ok_after_fault = 0, failed_before_fault = 0;
    ts_status expired_st = TS_OK, g = TS_OK;
    /* Until the keys run out: still served while refreshes fail. */
    for (int i = 0; i < 200; i++) {
        long faults = sim_stat("faults", NULL, 0);
        g = get_one(os, e, sizeof(e));
        if (g) {
            if (!faults) failed_before_fault++;
            expired_st = g;
            snprintf(expired_err, sizeof(expired_err), "%s", e);
            break;
        }
        if (faults > 0) ok_after_fault++;
        ts_sleep_ms(50);
    }
    /* The source comes back: requests work again without a restart. */
    TT_CHECK(sim_set("fail=0") == 0);
    g = TS_E_AUTH;
    for (int i = 0; i < 100 && g; i++) {
        g = get_one(os, e, sizeof(e));
        if (g) ts_sleep_ms(100);
    }
    uint64_t fetches = 0, failures = 0;
    ts_objstore_s3_creds_stats(os, &fetches, &failures);
    ts_objstore_destroy(os);
    os = NULL;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    saved = -1;
    ts_log_set_level(lvl);
    uint8_t *logtext = NULL;
    size_t loglen = 0;
    char lerr[256];
    TT_CHECK_OK(ts_fs_read_all(logpath, 1 << 24, &logtext, &loglen, lerr, sizeof(lerr)));
    char *lt = realloc(logtext, loglen + 1);
    TT_CHECK(lt != NULL);
    lt[loglen] = '\0';
    int clean = no_secret_in(lt), warned = strstr(lt, "refreshing S3 credentials") != NULL;
    free(lt);
    TT_CHECK_MSG(clean, "a secret reached the log (%s)", logpath);
    TT_CHECK_MSG(warned, "no warning about the failing refresh in %s", logpath);
    TT_CHECK_EQ_INT(failed_before_fault, 0);
    TT_CHECK_MSG(ok_after_fault > 0, "no request was served by the old keys after a failed refresh");
    TT_CHECK_EQ_INT(expired_st, TS_E_REMOTE_RETRIABLE);
    TT_CHECK_MSG(strstr(expired_err, "xpire") && strstr(expired_err, "could not be refreshed") && strstr(expired_err, "role/tierstore") &&
                     strstr(expired_err, "HTTP 500") && strstr(expired_err, "token file"),
                 "%s", expired_err);
    TT_CHECK(no_secret_in(expired_err));
    TT_CHECK_OKE(g, e);
    TT_CHECK(failures >= 1);
done:
    if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        ts_log_set_level(lvl);
    }
    ts_objstore_destroy(os);
    sim_set("fail=0&lifetime=3600");
}

/* Threads signing requests while 2-second keys turn over; each refresh
 * takes 300 ms at the double, so unsynchronised refreshes would overlap. */
typedef struct worker {
    ts_objstore *os;
    int64_t until;
    int n, failed;
    char e[1024];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    while (ts_mono_ms() < w->until) {
        if (get_one(w->os, w->e, sizeof(w->e))) w->failed++;
        w->n++;
        ts_sleep_ms(5);
    }
    return NULL;
}

TT_TEST(concurrent_requests_during_refresh)
{
    use_imds();
    TT_ASSERT(sim_set("lifetime=2&delay_ms=300") == 0);
    ts_status st;
    ts_objstore *os = open_store(5000, &st);
    TT_ASSERT_MSG(os, "open: %s", err);
    long creds0 = sim_stat("imds_creds", NULL, 0);
    enum { NT = 8 };
    worker w[NT];
    pthread_t th[NT];
    int64_t until = ts_mono_ms() + 3000;
    for (int i = 0; i < NT; i++) {
        w[i] = (worker){.os = os, .until = until};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int total = 0, failed = 0;
    const char *last = "";
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        total += w[i].n;
        failed += w[i].failed;
        if (w[i].failed) last = w[i].e;
    }
    uint64_t fetches, failures;
    ts_objstore_s3_creds_stats(os, &fetches, &failures);
    ts_objstore_destroy(os);
    long creds = sim_stat("imds_creds", NULL, 0) - creds0;
    long max_in_flight = sim_stat("max_in_flight", NULL, 0);
    TT_ASSERT(sim_set("lifetime=3600&delay_ms=0") == 0);
    fprintf(stderr, "    (%d requests from %d threads, %ld refreshes)\n", total, NT, creds);
    TT_ASSERT_MSG(failed == 0, "%d of %d requests failed, last: %s", failed, total, last);
    TT_ASSERT(creds >= 1);
    TT_ASSERT_EQ_INT(max_in_flight, 1); /* refreshes collapsed to one at a time */
    TT_ASSERT_EQ_INT((long)fetches, creds + 1);
}

/* ----------------------------------------------------------- against RGW */

/* Against a real Ceph RGW (tests/rgw):
 *   --rgw      the IMDS double hands out RGW's own static key pair (no
 *              session token); the store gets it through the chain's last
 *              link;
 *   --rgw-sts  (run by tests/rgw/sts_web_identity.sh, which registers a
 *              local OIDC issuer and a role in RGW) keys from RGW's own STS
 *              AssumeRoleWithWebIdentity, with a session token;
 * and PUTs and GETs with them. */
static int rgw_main(int sts)
{
    const char *ep = getenv("AWS_ENDPOINT_URL"), *id = getenv("AWS_ACCESS_KEY_ID"),
               *secret = getenv("AWS_SECRET_ACCESS_KEY"), *bucket = getenv("TS_S3_TEST_BUCKET");
    const char *role = getenv("TS_S3_TEST_ROLE_ARN"), *tokf = getenv("TS_S3_TEST_TOKEN_FILE");
    if (!ep || !id || !secret || !bucket || (sts && (!role || !tokf))) {
        printf("no RGW (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
               "TS_S3_TEST_BUCKET%s): skipped\n",
               sts ? ", TS_S3_TEST_ROLE_ARN, TS_S3_TEST_TOKEN_FILE" : "");
        return 77;
    }
    char keys[600], endpoint[512], url[600], rolearn[512], tokfile[512];
    snprintf(keys, sizeof(keys), "static=%s:%s", id, secret);
    snprintf(endpoint, sizeof(endpoint), "%s", ep);
    snprintf(url, sizeof(url), "s3://%s/ts-test-creds-%s-%d/", bucket, sts ? "sts" : "imds",
             (int)getpid());
    snprintf(rolearn, sizeof(rolearn), "%s", role ? role : "");
    snprintf(tokfile, sizeof(tokfile), "%s", tokf ? tokf : "");
    if (!sts && (sim_start() || sim_set(keys))) {
        printf("credsim failed to start\n");
        return 1;
    }
    env_reset();
    setenv("AWS_ENDPOINT_URL", endpoint, 1); /* S3, and STS when web identity */
    unsetenv("AWS_ENDPOINT_URL_S3");
    if (sts) {
        setenv("AWS_ROLE_ARN", rolearn, 1);
        setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokfile, 1);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    } else {
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", g_sim_url, 1);
    }
    ts_config *cfg = ts_config_create();
    ts_objstore *os = NULL;
    int rc = 1;
    const char *how = sts ? "RGW's STS AssumeRoleWithWebIdentity" : "IMDSv2";
    ts_status st = ts_objstore_s3_open(url, cfg, &os, err, sizeof(err));
    ts_config_destroy(cfg);
    if (st) {
        printf("FAIL open with keys from %s: %s\n", how, err);
        goto out;
    }
    static const char body[] = "bytes signed with temporary keys";
    uint8_t *got = NULL;
    size_t len = 0;
    uint64_t fetches = 0, failures = 0;
    ts_objstore_s3_creds_stats(os, &fetches, &failures);
    if ((st = ts_objstore_put(os, "obj", body, sizeof(body) - 1, 0, err, sizeof(err))) ||
        (st = ts_objstore_get(os, "obj", 0, TS_OBJSTORE_TO_END, &got, &len, err, sizeof(err)))) {
        printf("FAIL PUT/GET against RGW: %s\n", err);
    } else if (len != sizeof(body) - 1 || memcmp(got, body, len)) {
        printf("FAIL GET returned %zu other bytes\n", len);
    } else if (fetches != 1 || failures != 0) {
        printf("FAIL the keys were not fetched once from %s\n", how);
    } else if (!sts && (sim_stat("imds_creds", NULL, 0) < 1 || sim_stat("v1_rejected", NULL, 0))) {
        printf("FAIL the keys did not come from IMDSv2\n");
    } else {
        printf("PASS PUT and GET against RGW with keys from %s\n", how);
        rc = 0;
    }
    free(got);
    ts_objstore_delete(os, "obj", err, sizeof(err));
out:
    ts_objstore_destroy(os);
    sim_stop();
    return rc;
}

int main(int argc, char **argv)
{
    /* libcurl honours proxy variables; everything here is on loopback. */
    const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                             "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) unsetenv(proxies[i]);
    if (ts_objstore_s3_global_init()) return 1;
    tt_tmpdir(g_dir, sizeof(g_dir), "s3creds");
    if (argc >= 2 && !strcmp(argv[1], "--rgw")) return rgw_main(0);
    if (argc >= 2 && !strcmp(argv[1], "--rgw-sts")) return rgw_main(1);
    /* --refresh: the tests that wait for keys to turn over (a ctest of
     * their own, to keep each under the suite's per-test budget). */
    int refresh = argc >= 2 && !strcmp(argv[1], "--refresh");
    if (refresh) {
        argc--;
        argv++;
    }
    TT_INIT(argc, argv);
    if (!refresh) {
        TT_RUN(json_documents);
        TT_RUN(iso8601_times);
        TT_RUN(imds_and_sts_documents);
        TT_RUN(refresh_schedule);
    }
    if (sim_start()) {
        fprintf(stderr, "credsim.py did not start\n");
        return 1;
    }
    if (!refresh) {
        TT_RUN(chain_order);
        TT_RUN(imds_keys_sign_requests);
        TT_RUN(imds_no_role_and_lapsed_session_token);
        TT_RUN(imds_unreachable);
        TT_RUN(web_identity_keys_and_token_rotation);
        TT_RUN(sts_errors_name_the_role);
        TT_RUN(revoked_keys_are_refreshed_once);
    } else {
        TT_RUN(refresh_before_expiry);
        TT_RUN(failed_refresh_keeps_valid_keys_then_expires_then_recovers);
        TT_RUN(concurrent_requests_during_refresh);
    }
    sim_stop();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", g_dir);
    return tt_summary();
}
