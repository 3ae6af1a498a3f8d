/*
 * s3_creds.c — credentials, region and endpoint resolution (see s3_creds.h).
 *
 * Config keys win over the environment, which wins over the shared files,
 * mirroring the AWS CLI. Keys and session token always come from one
 * place together: a secret from the environment is never paired with an id
 * from a file. The files are parsed line by line within their length.
 */
#include "s3_creds.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

    /* Keys: one source for id, secret and token together. */
    const char *cid = ts_config_settings(cfg)->aws_access_key_id;
    const char *csec = ts_config_settings(cfg)->aws_secret_access_key;
    const char *eid = ge("AWS_ACCESS_KEY_ID", op), *esec = ge("AWS_SECRET_ACCESS_KEY", op);
    if (cid && *cid && csec && *csec) {
        copy_nonempty(out->access_key_id, sizeof(out->access_key_id), cid);
        copy_nonempty(out->secret_access_key, sizeof(out->secret_access_key), csec);
        copy_nonempty(out->session_token, sizeof(out->session_token),
                      ts_config_settings(cfg)->aws_session_token);
        strcpy(out->source, "config aws.access.key.id/aws.secret.access.key");
    } else if (eid && *eid && esec && *esec) {
        copy_nonempty(out->access_key_id, sizeof(out->access_key_id), eid);
        copy_nonempty(out->secret_access_key, sizeof(out->secret_access_key), esec);
        copy_nonempty(out->session_token, sizeof(out->session_token), ge("AWS_SESSION_TOKEN", op));
        strcpy(out->source, "environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
    } else {
        ini_file *files[2] = {&credf, &conff};
        const char *sections[2] = {out->profile, cfg_section};
        for (int i = 0; i < 2 && !out->access_key_id[0]; i++) {
            if (!files[i]->text) continue;
            if (ts_s3_ini_get(files[i]->text, files[i]->len, sections[i], "aws_access_key_id",
                              out->access_key_id, sizeof(out->access_key_id)) ||
                ts_s3_ini_get(files[i]->text, files[i]->len, sections[i],
                              "aws_secret_access_key", out->secret_access_key,
                              sizeof(out->secret_access_key))) {
                out->access_key_id[0] = out->secret_access_key[0] = '\0';
                continue;
            }
            ts_s3_ini_get(files[i]->text, files[i]->len, sections[i], "aws_session_token",
                          out->session_token, sizeof(out->session_token));
            snprintf(out->source, sizeof(out->source), "%s [%s]", files[i]->path, sections[i]);
        }
    }

    if (!copy_nonempty(out->region, sizeof(out->region), ts_config_settings(cfg)->aws_region) &&
        !copy_nonempty(out->region, sizeof(out->region), ge("AWS_REGION", op)) &&
        !copy_nonempty(out->region, sizeof(out->region), ge("AWS_DEFAULT_REGION", op)) &&
        !(conff.text && !ts_s3_ini_get(conff.text, conff.len, cfg_section, "region", out->region,
                                       sizeof(out->region)) && out->region[0]))
        strcpy(out->region, "us-east-1");

    if (!copy_nonempty(out->endpoint, sizeof(out->endpoint),
                       ts_config_settings(cfg)->aws_endpoint_url) &&
        !copy_nonempty(out->endpoint, sizeof(out->endpoint), ge("AWS_ENDPOINT_URL_S3", op)) &&
        !copy_nonempty(out->endpoint, sizeof(out->endpoint), ge("AWS_ENDPOINT_URL", op)) &&
        conff.text)
        ts_s3_ini_get(conff.text, conff.len, cfg_section, "endpoint_url", out->endpoint,
                      sizeof(out->endpoint));

    if (!copy_nonempty(out->ca_bundle, sizeof(out->ca_bundle), ts_config_settings(cfg)->aws_ca_bundle) &&
        !copy_nonempty(out->ca_bundle, sizeof(out->ca_bundle), ge("AWS_CA_BUNDLE", op)) &&
        conff.text)
        ts_s3_ini_get(conff.text, conff.len, cfg_section, "ca_bundle", out->ca_bundle,
                      sizeof(out->ca_bundle));

    char credpath[1024], confpath[1024];
    snprintf(credpath, sizeof(credpath), "%s", credf.path[0] ? credf.path : "~/.aws/credentials");
    snprintf(confpath, sizeof(confpath), "%s", conff.path[0] ? conff.path : "~/.aws/config");
    ini_free(&credf);
    ini_free(&conff);
    if (!out->access_key_id[0] || !out->secret_access_key[0]) {
        ts_s3_creds_wipe(out);
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "no S3 credentials found: set aws.access.key.id and "
                          "aws.secret.access.key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                          "or profile [%s] in %s or %s",
                          out->profile, credpath, confpath);
    }
    return TS_OK;
}

void ts_s3_creds_wipe(ts_s3_creds *c)
{
    OPENSSL_cleanse(c->secret_access_key, sizeof(c->secret_access_key));
    OPENSSL_cleanse(c->session_token, sizeof(c->session_token));
}
