/*
 * s3_sts.c — keys from STS AssumeRoleWithWebIdentity, the way EKS (IRSA)
 * hands pods an IAM role.
 *
 *   POST <endpoint>/   Content-Type: application/x-www-form-urlencoded
 *   Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=…
 *     &RoleSessionName=…&WebIdentityToken=<contents of the token file>
 *
 * The call is unsigned (the web identity token is the proof), so it needs
 * no keys. The body, not the URL, carries the token, so it never shows up
 * in a URL a proxy or a debug log might keep. The token file is read again
 * on every call: the kubelet rewrites it before it expires. The answer is
 * XML, read with objstore/s3_xml.c's bounded parsers:
 *
 *   <AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>
 *     <Credentials><AccessKeyId/><SecretAccessKey/><SessionToken/>
 *       <Expiration>2026-12-02T10:00:00Z</Expiration></Credentials>…
 *   <ErrorResponse><Error><Type/><Code/><Message/></Error></ErrorResponse>
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "s3_provider.h"
#include "s3_sign.h"
#include "s3_xml.h"

#define STS_TOKEN_FILE_MAX (64 << 10)
#define STS_RESP_MAX (256 << 10)

static ts_status field(ts_s3_slice in, const char *tag, char *out, size_t outlen)
{
    size_t pos = 0;
    ts_s3_slice v;
    if (ts_s3_xml_next(in, &pos, tag, &v) != 1) return TS_E_CORRUPT;
    return ts_s3_xml_text(v, out, outlen);
}

ts_status ts_s3_sts_parse(const char *body, size_t len, ts_s3_keys *out, char *errstr,
                          size_t errlen)
{
    ts_s3_slice all = {body, len}, resp, result, creds;
    size_t pos = 0;
    char exp[64];
    if (!body) goto fail;
    if (ts_s3_xml_next(all, &pos, "AssumeRoleWithWebIdentityResponse", &resp) != 1) goto fail;
    pos = 0;
    if (ts_s3_xml_next(resp, &pos, "AssumeRoleWithWebIdentityResult", &result) != 1) goto fail;
    pos = 0;
    if (ts_s3_xml_next(result, &pos, "Credentials", &creds) != 1) goto fail;
    if (field(creds, "AccessKeyId", out->access_key_id, sizeof(out->access_key_id)) ||
        !out->access_key_id[0] ||
        field(creds, "SecretAccessKey", out->secret_access_key, sizeof(out->secret_access_key)) ||
        !out->secret_access_key[0] ||
        field(creds, "SessionToken", out->session_token, sizeof(out->session_token)) ||
        field(creds, "Expiration", exp, sizeof(exp)) ||
        (out->expires_ms = ts_s3_parse_iso8601(exp)) < 0)
        goto fail;
    return TS_OK;
fail:
    OPENSSL_cleanse(out->secret_access_key, sizeof(out->secret_access_key));
    OPENSSL_cleanse(out->session_token, sizeof(out->session_token));
    out->access_key_id[0] = '\0';
    out->expires_ms = 0;
    return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                      "unreadable AssumeRoleWithWebIdentity answer (%zu bytes; expected "
                      "Credentials with AccessKeyId, SecretAccessKey, SessionToken, Expiration)",
                      len);
}

int ts_s3_sts_parse_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
                          size_t msglen)
{
    /* The Error element of an ErrorResponse has the same Code and Message
     * as S3's error document. */
    return ts_s3_xml_parse_error(body, len, code, codelen, msg, msglen);
}

/* STS error codes worth another try (throttling, the identity provider or
 * STS itself having trouble). */
static int retriable_code(const char *code)
{
    return !strcmp(code, "Throttling") || !strcmp(code, "ThrottlingException") ||
           !strcmp(code, "IDPCommunicationError") || !strcmp(code, "ServiceUnavailable") ||
           !strcmp(code, "InternalFailure") || !strcmp(code, "RequestExpired");
}

static const char *error_hint(const char *code)
{
    if (!strcmp(code, "AccessDenied"))
        return "the role's trust policy does not allow this identity (check its "
               "sts:AssumeRoleWithWebIdentity condition on the issuer, audience and subject)";
    if (!strcmp(code, "InvalidIdentityToken"))
        return "STS could not validate the token (is the OIDC provider registered in IAM?)";
    if (!strcmp(code, "ExpiredTokenException"))
        return "the web identity token has expired (is the token file still being rotated?)";
    if (!strcmp(code, "IDPRejectedClaim"))
        return "the identity provider rejected the token's claims";
    if (!strcmp(code, "RegionDisabledException"))
        return "STS is not activated in this region; set AWS_REGION or AWS_ENDPOINT_URL_STS";
    return "see the STS error code";
}

/* Appends k=urlencode(v)[&]. */
static ts_status form_add(ts_buf *b, const char *k, const char *v, size_t vlen, int last)
{
    ts_status st;
    if ((st = ts_buf_append(b, k, strlen(k))) || (st = ts_buf_append(b, "=", 1)) ||
        (st = ts_s3_uri_encode(b, v, vlen, 1)) || (!last && (st = ts_buf_append(b, "&", 1))))
        return st;
    return TS_OK;
}

ts_status ts_s3_sts_fetch(const ts_s3_sts *w, ts_s3_keys *out, char *errstr, size_t errlen)
{
    uint8_t *tok = NULL;
    size_t toklen = 0;
    char ferr[256];
    ts_status st = ts_fs_read_all(w->token_file, STS_TOKEN_FILE_MAX, &tok, &toklen, ferr,
                                  sizeof(ferr));
    if (st)
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "cannot read the web identity token file %s "
                          "(AWS_WEB_IDENTITY_TOKEN_FILE): %s",
                          w->token_file, ferr);
    while (toklen && (tok[toklen - 1] == '\n' || tok[toklen - 1] == '\r' || tok[toklen - 1] == ' '))
        toklen--;
    if (!toklen) {
        free(tok);
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "the web identity token file %s is empty",
                          w->token_file);
    }
    ts_buf form, resp;
    ts_buf_init(&form, 4 * STS_TOKEN_FILE_MAX);
    ts_buf_init(&resp, STS_RESP_MAX);
    static const char act[] = "AssumeRoleWithWebIdentity", ver[] = "2011-06-15";
    if (form_add(&form, "Action", act, sizeof(act) - 1, 0) ||
        form_add(&form, "Version", ver, sizeof(ver) - 1, 0) ||
        form_add(&form, "RoleArn", w->role_arn, strlen(w->role_arn), 0) ||
        form_add(&form, "RoleSessionName", w->session_name, strlen(w->session_name), 0) ||
        form_add(&form, "WebIdentityToken", (const char *)tok, toklen, 1) ||
        ts_buf_append(&form, "", 1)) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory building the STS request");
        goto done;
    }
    OPENSSL_cleanse(tok, toklen);
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                          "Accept: application/xml", "Expect:", NULL};
    char url[1100];
    size_t el = strlen(w->endpoint);
    snprintf(url, sizeof(url), "%s%s", w->endpoint, el && w->endpoint[el - 1] == '/' ? "" : "/");
    long status = 0;
    char herr[1024];
    st = ts_s3_cred_http("POST", url, hdrs, (const char *)form.data, &w->http, &status, &resp, herr,
                         sizeof(herr));
    if (st) {
        st = ts_err_set(errstr, errlen, st == TS_E_TIMEOUT ? TS_E_TIMEOUT : TS_E_REMOTE_RETRIABLE,
                        "STS AssumeRoleWithWebIdentity for role %s: %s", w->role_arn, herr);
        goto done;
    }
    if (status != 200) {
        char code[128] = "", msg[512] = "";
        ts_s3_sts_parse_error((const char *)resp.data, resp.len, code, sizeof(code), msg,
                              sizeof(msg));
        st = status >= 500 || status == 429 || retriable_code(code) ? TS_E_REMOTE_RETRIABLE
                                                                   : TS_E_AUTH;
        ts_err_set(errstr, errlen, st,
                   "STS %s %s AssumeRoleWithWebIdentity for role %s (session %s): HTTP %ld"
                   "%s%s%s%s; %s",
                   w->endpoint, code[0] ? "refused" : "failed", w->role_arn, w->session_name,
                   status, code[0] ? " " : "", code, msg[0] ? " - " : "", msg,
                   code[0] ? error_hint(code) : "retried with backoff");
        goto done;
    }
    st = ts_s3_sts_parse((const char *)resp.data, resp.len, out, errstr, errlen);
    if (st) ts_err_prefix(errstr, errlen, st, "STS %s, role %s", w->endpoint, w->role_arn);
done:
    if (tok) OPENSSL_cleanse(tok, toklen);
    free(tok);
    if (form.data) OPENSSL_cleanse(form.data, form.len);
    if (resp.data) OPENSSL_cleanse(resp.data, resp.len);
    ts_buf_free(&form);
    ts_buf_free(&resp);
    return st;
}
