/*
 * s3_imds.c — keys from the EC2 instance metadata service, IMDSv2 only.
 *
 *   PUT /latest/api/token            X-aws-ec2-metadata-token-ttl-seconds: 21600
 *                                    -> the session token (text)
 *   GET /latest/meta-data/iam/security-credentials/        X-aws-ec2-metadata-token
 *                                    -> the role name (first line)
 *   GET /latest/meta-data/iam/security-credentials/<role>  X-aws-ec2-metadata-token
 *                                    -> {"Code":"Success","AccessKeyId":…,
 *                                        "SecretAccessKey":…,"Token":…,
 *                                        "Expiration":"2026-12-02T10:00:00Z",…}
 *
 * IMDSv1 (GETs without a session token) is never used: v2 is what protects
 * the keys from SSRF through proxies. The service is link-local, so the
 * proxy variables are ignored, and every request has a short cap
 * (AWS_METADATA_SERVICE_TIMEOUT, 1 s by default): IMDS is the last link of
 * the chain and a host without it must find out quickly. The session token
 * is kept (never logged) for most of its 6-hour TTL; a 401 means it lapsed
 * and one new token is fetched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "s3_provider.h"

#define IMDS_TOKEN_TTL_S 21600
#define IMDS_DOC_MAX (64 << 10)
#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

/* ------------------------------------------------------------------------
 * A flat JSON object, read through bounds
 * ------------------------------------------------------------------------ */

static size_t skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
    return i;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the string starting at b[*i] == '"'; when out is non-NULL decodes it
 * into out (NUL-terminated). Moves *i past the closing quote. -1 when
 * malformed or too long for out. */
static int read_string(const char *b, size_t len, size_t *i, char *out, size_t outlen)
{
    size_t p = *i, o = 0;
    if (p >= len || b[p] != '"') return -1;
    for (p++; p < len; p++) {
        unsigned char c = (unsigned char)b[p];
        unsigned cp;
        if (c == '"') {
            if (out) out[o] = '\0';
            *i = p + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c != '\\') {
            cp = c;
        } else {
            if (++p >= len) return -1;
            switch (b[p]) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                if (p + 4 >= len) return -1;
                cp = 0;
                for (int k = 1; k <= 4; k++) {
                    int v = hexval(b[p + k]);
                    if (v < 0) return -1;
                    cp = cp * 16 + (unsigned)v;
                }
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = '?'; /* no surrogate pairs needed here */
                break;
            }
            default: return -1;
            }
        }
        if (!out) continue;
        /* raw bytes >= 0x80 are copied as they are (UTF-8 passes through) */
        char enc[3];
        size_t n;
        if (cp < 0x80 || c >= 0x80) {
            enc[0] = (char)cp;
            n = 1;
        } else if (cp < 0x800) {
            enc[0] = (char)(0xC0 | (cp >> 6));
            enc[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        } else {
            enc[0] = (char)(0xE0 | (cp >> 12));
            enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            enc[2] = (char)(0x80 | (cp & 0x3F));
            n = 3;
        }
        if (o + n >= outlen) return -1;
        memcpy(out + o, enc, n);
        o += n;
    }
    return -1;
}

/* Skips one value (string, number, literal, or nested object/array). */
static int skip_value(const char *b, size_t len, size_t *i)
{
    size_t p = *i;
    if (p >= len) return -1;
    if (b[p] == '"') return read_string(b, len, i, NULL, 0);
    if (b[p] == '{' || b[p] == '[') {
        int depth = 0;
        while (p < len) {
            char c = b[p];
            if (c == '"') {
                if (read_string(b, len, &p, NULL, 0)) return -1;
                continue;
            }
            if (c == '{' || c == '[') {
                if (++depth > 32) return -1;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    *i = p + 1;
                    return 0;
                }
            }
            p++;
        }
        return -1;
    }
    size_t s = p;
    while (p < len && b[p] != ',' && b[p] != '}' && b[p] != ' ' && b[p] != '\n' &&
           b[p] != '\r' && b[p] != '\t')
        p++;
    if (p == s) return -1;
    *i = p;
    return 0;
}

int ts_s3_json_get(const char *b, size_t len, const char *key, char *out, size_t outlen)
{
    /* The whole object must be well formed (a document cut short is not
     * read at all), so every member is walked to the closing brace. */
    char name[128];
    int found = 0;
    size_t i = b ? skip_ws(b, len, 0) : 0;
    if (!b || i >= len || b[i] != '{') goto fail;
    i = skip_ws(b, len, i + 1);
    if (i < len && b[i] == '}') goto fail; /* empty: nothing to find */
    for (;;) {
        if (read_string(b, len, &i, name, sizeof(name))) goto fail;
        i = skip_ws(b, len, i);
        if (i >= len || b[i] != ':') goto fail;
        i = skip_ws(b, len, i + 1);
        if (!found && !strcmp(name, key)) {
            if (i >= len || b[i] != '"' || read_string(b, len, &i, out, outlen)) goto fail;
            found = 1;
        } else if (skip_value(b, len, &i)) {
            goto fail;
        }
        i = skip_ws(b, len, i);
        if (i < len && b[i] == ',') {
            i = skip_ws(b, len, i + 1);
            continue;
        }
        if (i >= len || b[i] != '}') goto fail;
        break;
    }
    if (skip_ws(b, len, i + 1) != len || !found) goto fail;
    return 0;
fail:
    if (outlen) out[0] = '\0';
    return -1;
}

ts_status ts_s3_imds_parse(const char *body, size_t len, ts_s3_keys *out, char *errstr,
                           size_t errlen)
{
    char code[64], exp[64];
    if (!ts_s3_json_get(body, len, "Code", code, sizeof(code)) && strcmp(code, "Success")) {
        char msg[256] = "";
        ts_s3_json_get(body, len, "Message", msg, sizeof(msg));
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c < 0x20) *c = ' ';
        return ts_err_set(errstr, errlen, TS_E_AUTH,
                          "the role's credentials are not ready (Code %s%s%s)",
                          code, msg[0] ? ": " : "", msg);
    }
    if (ts_s3_json_get(body, len, "AccessKeyId", out->access_key_id, sizeof(out->access_key_id)) ||
        !out->access_key_id[0] ||
        ts_s3_json_get(body, len, "SecretAccessKey", out->secret_access_key,
                       sizeof(out->secret_access_key)) ||
        !out->secret_access_key[0])
        goto fail;
    if (ts_s3_json_get(body, len, "Token", out->session_token, sizeof(out->session_token)))
        out->session_token[0] = '\0';
    out->expires_ms = 0;
    if (!ts_s3_json_get(body, len, "Expiration", exp, sizeof(exp)) &&
        (out->expires_ms = ts_s3_parse_iso8601(exp)) < 0)
        goto fail;
    return TS_OK;
fail:
    out->access_key_id[0] = '\0';
    out->secret_access_key[0] = out->session_token[0] = '\0';
    out->expires_ms = 0;
    return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                      "unreadable credentials document (%zu bytes; expected JSON with "
                      "AccessKeyId, SecretAccessKey, Token and an ISO 8601 Expiration)",
                      len);
}

/* ------------------------------------------------------------------------
 * The exchanges
 * ------------------------------------------------------------------------ */

/* One request, retried up to m->attempts times when there is no answer. */
static ts_status imds_call(ts_s3_imds *m, const char *method, const char *path,
                           const char *const *hdrs, long *status, ts_buf *resp, char *errstr,
                           size_t errlen)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", m->endpoint, path);
    ts_s3_http_opts o = {.timeout_ms = m->timeout_ms, .connect_timeout_ms = m->timeout_ms,
                         .no_proxy = 1, .tls_verify = 1};
    ts_status st = TS_OK;
    for (int a = 0; a < m->attempts; a++) {
        m->requests++;
        st = ts_s3_cred_http(method, url, hdrs, method[0] == 'P' ? "" : NULL, &o, status, resp,
                             errstr, errlen);
        if (!st && *status < 500) return TS_OK;
        if (!st) st = ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE, "%s %s: HTTP %ld",
                                 method, url, *status);
    }
    if (m->attempts > 1) ts_err_prefix(errstr, errlen, st, "%d attempts", m->attempts);
    return st;
}

static ts_status get_token(ts_s3_imds *m, ts_buf *resp, char *errstr, size_t errlen)
{
    if (m->token[0] && ts_mono_ms() < m->token_until_mono) return TS_OK;
    const char *hdrs[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};
    long status;
    ts_status st = imds_call(m, "PUT", "/latest/api/token", hdrs, &status, resp, errstr, errlen);
    if (st) return st;
    if (status != 200)
        return ts_err_set(errstr, errlen, status == 403 || status == 404 || status == 405
                                              ? TS_E_UNSUPPORTED
                                              : TS_E_REMOTE,
                          "PUT %s/latest/api/token (IMDSv2 session token): HTTP %ld%s", m->endpoint,
                          status,
                          status == 403 ? " (IMDSv2 token requests are disabled on this instance)"
                                        : "");
    size_t n = resp->len;
    while (n && (resp->data[n - 1] == '\n' || resp->data[n - 1] == '\r')) n--;
    if (!n || n >= sizeof(m->token))
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "PUT %s/latest/api/token: a %zu-byte token", m->endpoint, n);
    memcpy(m->token, resp->data, n);
    m->token[n] = '\0';
    /* Renew well inside the TTL so a token never lapses between our check
     * and the service's. */
    m->token_until_mono = ts_mono_ms() + (int64_t)IMDS_TOKEN_TTL_S * 1000 * 9 / 10;
    return TS_OK;
}

/* GET with the session token; one new token on 401. */
static ts_status get_with_token(ts_s3_imds *m, const char *path, long *status, ts_buf *resp,
                                char *errstr, size_t errlen)
{
    for (int round = 0; round < 2; round++) {
        ts_status st = get_token(m, resp, errstr, errlen);
        if (st) return st;
        char hdr[sizeof(m->token) + 40];
        snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", m->token);
        const char *hdrs[] = {hdr, NULL};
        st = imds_call(m, "GET", path, hdrs, status, resp, errstr, errlen);
        memset(hdr, 0, sizeof(hdr));
        if (st) return st;
        if (*status != 401) return TS_OK;
        m->token[0] = '\0'; /* lapsed or revoked */
    }
    return TS_OK;
}

ts_status ts_s3_imds_fetch(ts_s3_imds *m, ts_s3_keys *out, char *errstr, size_t errlen)
{
    ts_buf resp;
    ts_buf_init(&resp, IMDS_DOC_MAX);
    long status = 0;
    char role[256], path[512];
    ts_status st = get_with_token(m, IMDS_CREDS_PATH, &status, &resp, errstr, errlen);
    if (st) goto done;
    if (status == 404) {
        st = ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                        "the instance has no IAM role (GET %s%s: 404); attach an instance "
                        "profile",
                        m->endpoint, IMDS_CREDS_PATH);
        goto done;
    }
    if (status != 200) {
        st = ts_err_set(errstr, errlen, status == 401 ? TS_E_AUTH : TS_E_REMOTE,
                        "GET %s%s: HTTP %ld", m->endpoint, IMDS_CREDS_PATH, status);
        goto done;
    }
    size_t n = 0;
    while (n < resp.len && resp.data[n] != '\n' && resp.data[n] != '\r') n++;
    if (!n || n >= sizeof(role) || memchr(resp.data, '/', n) || memchr(resp.data, '?', n)) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "GET %s%s: no usable role name",
                        m->endpoint, IMDS_CREDS_PATH);
        goto done;
    }
    memcpy(role, resp.data, n);
    role[n] = '\0';
    snprintf(path, sizeof(path), "%s%s", IMDS_CREDS_PATH, role);
    if ((st = get_with_token(m, path, &status, &resp, errstr, errlen))) goto done;
    if (status != 200) {
        st = ts_err_set(errstr, errlen, status == 404 ? TS_E_NOT_FOUND : TS_E_REMOTE,
                        "GET %s%s: HTTP %ld", m->endpoint, path, status);
        goto done;
    }
    st = ts_s3_imds_parse((const char *)resp.data, resp.len, out, errstr, errlen);
    if (st) ts_err_prefix(errstr, errlen, st, "GET %s%s", m->endpoint, path);
done:
    if (resp.data) memset(resp.data, 0, resp.len);
    ts_buf_free(&resp);
    return st;
}
