/*
 * s3_creds.c — credentials, region and endpoint resolution (see s3_creds.h).
 *
 * Config keys win over the environment, which wins over a web identity,
 * which wins over the shared files, with the instance metadata service
 * last: the order of the AWS SDKs' default chains (Java v2, Kotlin, PHP).
 * Keys and session token always come from one place together: a secret
 * from the environment is never paired with an id from a file. Web
 * identity and IMDS are only recorded here (nothing is contacted); the
 * provider (s3_provider.c) fetches their keys. The files are parsed line
 * by line within their length.
 */
#include "s3_creds.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "common/config_table.h"
#include "common/err.h"
#include "common/fsutil.h"

#define INI_MAX (1024 * 1024)

static const char *sys_getenv(const char *name, void *opaque)
{
    (void)opaque;
    return getenv(name);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int ts_s3_ini_get(const char *text, size_t len, const char *section, const char *key, char *out,
                  size_t outlen)
{
    size_t i = 0, sl = strlen(section), kl = strlen(key);
    int in_section = 0;
    while (i < len) {
        size_t s = i;
        while (i < len && text[i] != '\n') i++;
        size_t e = i;
        if (i < len) i++; /* past '\n' */
        int indented = s < e && is_space(text[s]);
        while (s < e && is_space(text[s])) s++;
        while (e > s && is_space(text[e - 1])) e--;
        if (s == e || text[s] == '#' || text[s] == ';') continue;
        if (text[s] == '[') {
            if (text[e - 1] != ']') {
                in_section = 0;
                continue;
            }
            size_t a = s + 1, b = e - 1;
            while (a < b && is_space(text[a])) a++;
            while (b > a && is_space(text[b - 1])) b--;
            in_section = (b - a == sl) && !memcmp(text + a, section, sl);
            continue;
        }
        if (!in_section || indented) continue;
        const char *eq = memchr(text + s, '=', e - s);
        if (!eq) continue;
        size_t ke = (size_t)(eq - text);
        while (ke > s && is_space(text[ke - 1])) ke--;
        if (ke - s != kl || memcmp(text + s, key, kl)) continue;
        size_t vs = (size_t)(eq - text) + 1;
        while (vs < e && is_space(text[vs])) vs++;
        if (e - vs >= outlen) return -1;
        memcpy(out, text + vs, e - vs);
        out[e - vs] = '\0';
        return 0;
    }
    return -1;
}

static int copy_nonempty(char *dst, size_t dstlen, const char *src)
{
    if (!src || !*src) return 0;
    if (strlen(src) >= dstlen) return 0;
    strcpy(dst, src);
    return 1;
}

typedef struct ini_file {
    char path[1024];
    char *text;
    size_t len;
} ini_file;

static void ini_load(ini_file *f, const char *env_path, const char *home, const char *rel,
                     ts_s3_getenv_fn ge, void *op)
{
    const char *p = ge(env_path, op);
    f->text = NULL;
    f->len = 0;
    if (p && *p) snprintf(f->path, sizeof(f->path), "%s", p);
    else if (home && *home) snprintf(f->path, sizeof(f->path), "%s/%s", home, rel);
    else {
        f->path[0] = '\0';
        return;
    }
    uint8_t *data;
    size_t len;
    char err[64];
    if (ts_fs_read_all(f->path, INI_MAX, &data, &len, err, sizeof(err)) == TS_OK) {
        f->text = (char *)data;
        f->len = len;
    }
}

static void ini_free(ini_file *f)
{
    if (f->text) {
        OPENSSL_cleanse(f->text, f->len);
        free(f->text);
    }
    f->text = NULL;
}

static int env_true(const char *v) { return v && !strcasecmp(v, "true"); }

/* Web identity: each setting from the environment, else from the config
 * file's profile (as the AWS SDKs do). Returns 1 when the role and the token
 * file are both set, 0 when neither is, -1 (message in errstr) when only one. */
static int resolve_web_identity(ts_s3_creds *out, const ini_file *conff, const char *section,
                                ts_s3_getenv_fn ge, void *op, char *errstr, size_t errlen)
{
    static const struct {
        const char *env, *key;
        size_t off, len;
    } keys[] = {
        {"AWS_ROLE_ARN", "role_arn", offsetof(ts_s3_creds, role_arn), sizeof(out->role_arn)},
        {"AWS_WEB_IDENTITY_TOKEN_FILE", "web_identity_token_file",
         offsetof(ts_s3_creds, web_identity_token_file), sizeof(out->web_identity_token_file)},
        {"AWS_ROLE_SESSION_NAME", "role_session_name", offsetof(ts_s3_creds, role_session_name),
         sizeof(out->role_session_name)},
    };
    const char *from[3] = {"", "", ""};
    for (size_t i = 0; i < 3; i++) {
        char *dst = (char *)out + keys[i].off;
        dst[0] = '\0';
        if (copy_nonempty(dst, keys[i].len, ge(keys[i].env, op))) from[i] = keys[i].env;
        else if (conff->text &&
                 !ts_s3_ini_get(conff->text, conff->len, section, keys[i].key, dst, keys[i].len) &&
                 dst[0])
            from[i] = keys[i].key;
        else
            dst[0] = '\0';
    }
    int has_role = out->role_arn[0] != '\0', has_file = out->web_identity_token_file[0] != '\0';
    /* A role_arn alone in a profile is AssumeRole with a source profile,
     * which is not supported; it is not a half web identity either. */
    if (has_role && !has_file && !strcmp(from[0], "role_arn")) {
        out->role_arn[0] = out->role_session_name[0] = '\0';
        return 0;
    }
    if (has_role != has_file) {
        ts_err_set(errstr, errlen, TS_E_CONFIG,
                   "web identity half configured: %s is set but %s is not; set both "
                   "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (or role_arn and "
                   "web_identity_token_file in [%s] of %s), or neither",
                   has_role ? from[0] : from[1],
                   has_role ? "a web identity token file" : "a role ARN",
                   section, conff->path[0] ? conff->path : "~/.aws/config");
        return -1;
    }
    if (!has_role) return 0;
    snprintf(out->source, sizeof(out->source),
             "web identity (STS AssumeRoleWithWebIdentity, role %s, token file %s, from %s)",
             out->role_arn, out->web_identity_token_file,
             !strcmp(from[0], "AWS_ROLE_ARN") ? "the environment" : section);
    return 1;
}

static void resolve_sts_endpoint(ts_s3_creds *out, ts_s3_getenv_fn ge, void *op)
{
    if (copy_nonempty(out->sts_endpoint, sizeof(out->sts_endpoint),
                      ge("AWS_ENDPOINT_URL_STS", op)) ||
        copy_nonempty(out->sts_endpoint, sizeof(out->sts_endpoint), ge("AWS_ENDPOINT_URL", op)))
        return;
    snprintf(out->sts_endpoint, sizeof(out->sts_endpoint), "https://sts.%s.amazonaws.com%s",
             out->region, !strncmp(out->region, "cn-", 3) ? ".cn" : "");
}

static void resolve_imds(ts_s3_creds *out, const ini_file *conff, const char *section,
                         ts_s3_getenv_fn ge, void *op)
{
    char mode[16] = "";
    if (!copy_nonempty(out->imds_endpoint, sizeof(out->imds_endpoint),
                       ge("AWS_EC2_METADATA_SERVICE_ENDPOINT", op)) &&
        !(conff->text &&
          !ts_s3_ini_get(conff->text, conff->len, section, "ec2_metadata_service_endpoint",
                         out->imds_endpoint, sizeof(out->imds_endpoint)) &&
          out->imds_endpoint[0])) {
        if (!copy_nonempty(mode, sizeof(mode), ge("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", op)) &&
            conff->text)
            ts_s3_ini_get(conff->text, conff->len, section, "ec2_metadata_service_endpoint_mode",
                          mode, sizeof(mode));
        strcpy(out->imds_endpoint,
               !strcasecmp(mode, "IPv6") ? "http://[fd00:ec2::254]" : "http://169.254.169.254");
    }
    size_t n = strlen(out->imds_endpoint);
    while (n && out->imds_endpoint[n - 1] == '/') out->imds_endpoint[--n] = '\0';
    const char *t = ge("AWS_METADATA_SERVICE_TIMEOUT", op);
    const char *a = ge("AWS_METADATA_SERVICE_NUM_ATTEMPTS", op);
    double secs = t && *t ? strtod(t, NULL) : 1.0;
    long att = a && *a ? strtol(a, NULL, 10) : 1;
    if (!(secs > 0) || secs > 60) secs = 1.0;
    if (att < 1 || att > 10) att = 1;
    out->imds_timeout_ms = (int64_t)(secs * 1000);
    out->imds_attempts = (int)att;
    snprintf(out->source, sizeof(out->source), "the EC2 instance metadata service (IMDSv2) at %s",
             out->imds_endpoint);
}

/* Profile, region, endpoint and CA bundle: explicit config first, then the
 * environment, then the profile in the config file. */
static void resolve_settings(const ts_config *cfg, const ini_file *conff, const char *cfg_section,
                             ts_s3_getenv_fn ge, void *op, ts_s3_creds *out)
{
    const ts_settings *set = ts_config_settings(cfg);
    if (!copy_nonempty(out->region, sizeof(out->region), set->aws_region) &&
        !copy_nonempty(out->region, sizeof(out->region), ge("AWS_REGION", op)) &&
        !copy_nonempty(out->region, sizeof(out->region), ge("AWS_DEFAULT_REGION", op)) &&
        !(conff->text && !ts_s3_ini_get(conff->text, conff->len, cfg_section, "region",
                                        out->region, sizeof(out->region)) &&
          out->region[0]))
        strcpy(out->region, "us-east-1");

    if (!copy_nonempty(out->endpoint, sizeof(out->endpoint), set->aws_endpoint_url) &&
        !copy_nonempty(out->endpoint, sizeof(out->endpoint), ge("AWS_ENDPOINT_URL_S3", op)) &&
        !copy_nonempty(out->endpoint, sizeof(out->endpoint), ge("AWS_ENDPOINT_URL", op)) &&
        conff->text)
        ts_s3_ini_get(conff->text, conff->len, cfg_section, "endpoint_url", out->endpoint,
                      sizeof(out->endpoint));

    if (!copy_nonempty(out->ca_bundle, sizeof(out->ca_bundle), set->aws_ca_bundle) &&
        !copy_nonempty(out->ca_bundle, sizeof(out->ca_bundle), ge("AWS_CA_BUNDLE", op)) &&
        conff->text)
        ts_s3_ini_get(conff->text, conff->len, cfg_section, "ca_bundle", out->ca_bundle,
                      sizeof(out->ca_bundle));
}

/* Static keys of the profile: the credentials file, then the config file. */
static void resolve_profile_keys(ini_file *credf, ini_file *conff, const char *cfg_section,
                                 ts_s3_creds *out)
{
    ini_file *files[2] = {credf, conff};
    const char *sections[2] = {out->profile, cfg_section};
    for (int i = 0; i < 2 && !out->access_key_id[0]; i++) {
        if (!files[i]->text) continue;
        if (ts_s3_ini_get(files[i]->text, files[i]->len, sections[i], "aws_access_key_id",
                          out->access_key_id, sizeof(out->access_key_id)) ||
            ts_s3_ini_get(files[i]->text, files[i]->len, sections[i], "aws_secret_access_key",
                          out->secret_access_key, sizeof(out->secret_access_key))) {
            out->access_key_id[0] = out->secret_access_key[0] = '\0';
            continue;
        }
        ts_s3_ini_get(files[i]->text, files[i]->len, sections[i], "aws_session_token",
                      out->session_token, sizeof(out->session_token));
        snprintf(out->source, sizeof(out->source), "%s [%s]", files[i]->path, sections[i]);
    }
}

/* Keys: one source for id, secret and token together, in the order of the
 * AWS SDKs' default chain (explicit config keys first). */
static ts_status resolve_keys(const ts_config *cfg, ini_file *credf, ini_file *conff,
                              const char *cfg_section, ts_s3_getenv_fn ge, void *op,
                              ts_s3_creds *out, char *errstr, size_t errlen)
{
    const ts_settings *set = ts_config_settings(cfg);
    const char *cid = set->aws_access_key_id, *csec = set->aws_secret_access_key;
    const char *eid = ge("AWS_ACCESS_KEY_ID", op), *esec = ge("AWS_SECRET_ACCESS_KEY", op);
    int wi = 0;
    if (cid && *cid && csec && *csec) {
        copy_nonempty(out->access_key_id, sizeof(out->access_key_id), cid);
        copy_nonempty(out->secret_access_key, sizeof(out->secret_access_key), csec);
        copy_nonempty(out->session_token, sizeof(out->session_token), set->aws_session_token);
        strcpy(out->source, "config aws.access.key.id/aws.secret.access.key");
    } else if (eid && *eid && esec && *esec) {
        copy_nonempty(out->access_key_id, sizeof(out->access_key_id), eid);
        copy_nonempty(out->secret_access_key, sizeof(out->secret_access_key), esec);
        copy_nonempty(out->session_token, sizeof(out->session_token), ge("AWS_SESSION_TOKEN", op));
        strcpy(out->source, "environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
    } else if ((wi = resolve_web_identity(out, conff, cfg_section, ge, op, errstr, errlen)) != 0) {
        if (wi < 0) return TS_E_CONFIG;
        out->kind = TS_S3_CREDS_WEB_IDENTITY;
        resolve_sts_endpoint(out, ge, op);
    } else {
        resolve_profile_keys(credf, conff, cfg_section, out);
    }
    return TS_OK;
}

/* No static keys anywhere: the instance metadata service, the chain's last
 * link, unless it is off (then the error says where keys were looked for). */
static ts_status resolve_last_resort(const ini_file *credf, ini_file *conff,
                                     const char *cfg_section, ts_s3_getenv_fn ge, void *op,
                                     ts_s3_creds *out, char *errstr, size_t errlen)
{
    char credpath[1024], confpath[1024];
    snprintf(credpath, sizeof(credpath), "%s", credf->path[0] ? credf->path : "~/.aws/credentials");
    snprintf(confpath, sizeof(confpath), "%s", conff->path[0] ? conff->path : "~/.aws/config");
    snprintf(out->not_found, sizeof(out->not_found),
             "no S3 credentials found: set aws.access.key.id and "
             "aws.secret.access.key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
             "or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, "
             "or profile [%s] in %s or %s",
             out->profile, credpath, confpath);
    if (env_true(ge("AWS_EC2_METADATA_DISABLED", op)))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "%s (the instance metadata service is off: "
                          "AWS_EC2_METADATA_DISABLED=true)",
                          out->not_found);
    out->access_key_id[0] = '\0';
    OPENSSL_cleanse(out->secret_access_key, sizeof(out->secret_access_key));
    out->kind = TS_S3_CREDS_IMDS;
    resolve_imds(out, conff, cfg_section, ge, op);
    return TS_OK;
}

ts_status ts_s3_creds_resolve(const ts_config *cfg, ts_s3_getenv_fn ge, void *op,
                              ts_s3_creds *out, char *errstr, size_t errlen)
{
    if (!ge) ge = sys_getenv;
    memset(out, 0, sizeof(*out));
    const char *home = ge("HOME", op);

    if (!copy_nonempty(out->profile, sizeof(out->profile), ts_config_settings(cfg)->aws_profile) &&
        !copy_nonempty(out->profile, sizeof(out->profile), ge("AWS_PROFILE", op)))
        strcpy(out->profile, "default");
    char cfg_section[160];
    if (!strcmp(out->profile, "default")) strcpy(cfg_section, "default");
    else snprintf(cfg_section, sizeof(cfg_section), "profile %s", out->profile);

    ini_file credf, conff;
    ini_load(&credf, "AWS_SHARED_CREDENTIALS_FILE", home, ".aws/credentials", ge, op);
    ini_load(&conff, "AWS_CONFIG_FILE", home, ".aws/config", ge, op);
    resolve_settings(cfg, &conff, cfg_section, ge, op, out);
    ts_status st = resolve_keys(cfg, &credf, &conff, cfg_section, ge, op, out, errstr, errlen);
    if (!st && out->kind == TS_S3_CREDS_STATIC &&
        (!out->access_key_id[0] || !out->secret_access_key[0]))
        st = resolve_last_resort(&credf, &conff, cfg_section, ge, op, out, errstr, errlen);
    ini_free(&credf);
    ini_free(&conff);
    if (st) ts_s3_creds_wipe(out);
    return st;
}

void ts_s3_creds_wipe(ts_s3_creds *c)
{
    OPENSSL_cleanse(c->secret_access_key, sizeof(c->secret_access_key));
    OPENSSL_cleanse(c->session_token, sizeof(c->session_token));
}
