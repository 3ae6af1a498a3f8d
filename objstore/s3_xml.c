/*
 * s3_xml.c — bounded lookups in S3's XML responses (see s3_xml.h).
 *
 * Every search runs inside a (pointer, length) slice: no strlen, no
 * strstr on server bytes, so a body without a NUL or with a lying element
 * can never make the parser read past it. Each parser has one `fail` exit.
 */
#include "s3_xml.h"

#include <string.h>

static const char *find_bytes(const char *h, size_t hl, const char *n, size_t nl)
{
    if (nl == 0 || hl < nl) return NULL;
    for (size_t i = 0; i + nl <= hl; i++)
        if (h[i] == n[0] && !memcmp(h + i, n, nl)) return h + i;
    return NULL;
}

int ts_s3_xml_next(ts_s3_slice in, size_t *pos, const char *tag, ts_s3_slice *inner)
{
    size_t tl = strlen(tag);
    char close[80];
    if (tl + 3 >= sizeof(close)) return -1;
    close[0] = '<';
    close[1] = '/';
    memcpy(close + 2, tag, tl);
    close[tl + 2] = '>';
    size_t at = *pos;
    while (at < in.len) {
        const char *o = find_bytes(in.p + at, in.len - at, "<", 1);
        if (!o) return 0;
        size_t off = (size_t)(o - in.p);
        size_t rest = in.len - off;
        if (rest < tl + 2 || memcmp(o + 1, tag, tl)) {
            at = off + 1;
            continue;
        }
        char c = o[1 + tl];
        if (c != '>' && c != '/' && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            at = off + 1; /* a longer tag name with this prefix */
            continue;
        }
        const char *gt = find_bytes(o, rest, ">", 1);
        if (!gt) return -1;
        size_t body = (size_t)(gt - in.p) + 1;
        if (gt[-1] == '/') { /* <tag/> */
            inner->p = in.p + body;
            inner->len = 0;
            *pos = body;
            return 1;
        }
        const char *e = find_bytes(in.p + body, in.len - body, close, tl + 3);
        if (!e) return -1;
        inner->p = in.p + body;
        inner->len = (size_t)(e - inner->p);
        *pos = (size_t)(e - in.p) + tl + 3;
        return 1;
    }
    return 0;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

ts_status ts_s3_xml_text(ts_s3_slice s, char *out, size_t outlen)
{
    size_t o = 0;
    if (!outlen) return TS_E_CORRUPT;
    for (size_t i = 0; i < s.len;) {
        char tmp[4];
        size_t n;
        if (s.p[i] != '&') {
            tmp[0] = s.p[i++];
            n = 1;
        } else {
            const char *semi = find_bytes(s.p + i, s.len - i < 12 ? s.len - i : 12, ";", 1);
            if (!semi) goto fail;
            size_t el = (size_t)(semi - (s.p + i)) + 1; /* "&...;" */
            const char *ent = s.p + i + 1;
            size_t nl = el - 2;
            if (nl == 3 && !memcmp(ent, "amp", 3)) tmp[0] = '&';
            else if (nl == 2 && !memcmp(ent, "lt", 2)) tmp[0] = '<';
            else if (nl == 2 && !memcmp(ent, "gt", 2)) tmp[0] = '>';
            else if (nl == 4 && !memcmp(ent, "quot", 4)) tmp[0] = '"';
            else if (nl == 4 && !memcmp(ent, "apos", 4)) tmp[0] = '\'';
            else if (nl >= 2 && ent[0] == '#') {
                unsigned long cp = 0;
                int hex = ent[1] == 'x' || ent[1] == 'X';
                size_t d = hex ? 2 : 1;
                if (d >= nl) goto fail;
                for (; d < nl; d++) {
                    char c = ent[d];
                    int v;
                    if (c >= '0' && c <= '9') v = c - '0';
                    else if (hex && c >= 'a' && c <= 'f') v = c - 'a' + 10;
                    else if (hex && c >= 'A' && c <= 'F') v = c - 'A' + 10;
                    else goto fail;
                    cp = cp * (hex ? 16 : 10) + (unsigned long)v;
                    if (cp > 0x10FFFF) goto fail;
                }
                if (cp == 0) goto fail;
                n = put_utf8(tmp, cp);
                i += el;
                goto copy;
            } else {
                goto fail;
            }
            n = 1;
            i += el;
        }
    copy:
        if (o + n >= outlen) goto fail;
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
    return TS_OK;
fail:
    out[0] = '\0';
    return TS_E_CORRUPT;
}

/* Text of the first child element `tag` of parent into out; 0 when found. */
static int child_text(ts_s3_slice parent, const char *tag, char *out, size_t outlen)
{
    size_t pos = 0;
    ts_s3_slice in;
    if (ts_s3_xml_next(parent, &pos, tag, &in) != 1) return -1;
    return ts_s3_xml_text(in, out, outlen) == TS_OK ? 0 : -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int ts_s3_xml_parse_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
                          size_t msglen)
{
    ts_s3_slice all = {body, len}, err;
    size_t pos = 0;
    if (codelen) code[0] = '\0';
    if (msglen) msg[0] = '\0';
    if (!body || ts_s3_xml_next(all, &pos, "Error", &err) != 1) return 0;
    /* Truncation is fine for messages: copy what fits. */
    size_t p2 = 0;
    ts_s3_slice in;
    if (codelen && ts_s3_xml_next(err, &p2, "Code", &in) == 1) {
        size_t n = in.len < codelen - 1 ? in.len : codelen - 1;
        memcpy(code, in.p, n);
        code[n] = '\0';
    }
    p2 = 0;
    if (msglen && ts_s3_xml_next(err, &p2, "Message", &in) == 1) {
        ts_s3_slice cut = {in.p, in.len < msglen - 1 ? in.len : msglen - 1};
        if (ts_s3_xml_text(cut, msg, msglen) != TS_OK) {
            memcpy(msg, cut.p, cut.len);
            msg[cut.len] = '\0';
        }
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c < 0x20) *c = ' ';
    }
    return 1;
}

ts_status ts_s3_xml_parse_list(const char *body, size_t len,
                               int (*cb)(const char *key, uint64_t size, void *opaque),
                               void *opaque, int *stopped, int *truncated, char *token,
                               size_t tokenlen, size_t *nkeys)
{
    ts_s3_slice all = {body, len}, res, c;
    size_t pos = 0;
    char key[TS_S3_KEY_MAX + 1], num[32];
    *stopped = 0;
    *truncated = 0;
    *nkeys = 0;
    if (tokenlen) token[0] = '\0';
    if (ts_s3_xml_next(all, &pos, "ListBucketResult", &res) != 1) goto fail;
    /* IsTruncated and the token come after the Contents in S3's answers;
     * read them first so an early stop still knows the state. */
    char tr[8];
    if (child_text(res, "IsTruncated", tr, sizeof(tr)) == 0) *truncated = !strcmp(tr, "true");
    if (*truncated && child_text(res, "NextContinuationToken", token, tokenlen) != 0) goto fail;
    pos = 0;
    int r;
    while ((r = ts_s3_xml_next(res, &pos, "Contents", &c)) == 1) {
        uint64_t size;
        if (child_text(c, "Key", key, sizeof(key)) != 0) goto fail;
        if (child_text(c, "Size", num, sizeof(num)) != 0 || parse_u64(num, &size)) goto fail;
        (*nkeys)++;
        if (cb(key, size, opaque)) {
            *stopped = 1;
            return TS_OK;
        }
    }
    if (r < 0) goto fail;
    return TS_OK;
fail:
    return TS_E_CORRUPT;
}

ts_status ts_s3_xml_parse_upload_id(const char *body, size_t len, char *upload_id, size_t idlen)
{
    ts_s3_slice all = {body, len}, res;
    size_t pos = 0;
    if (ts_s3_xml_next(all, &pos, "InitiateMultipartUploadResult", &res) != 1) goto fail;
    if (child_text(res, "UploadId", upload_id, idlen) != 0 || !upload_id[0]) goto fail;
    return TS_OK;
fail:
    if (idlen) upload_id[0] = '\0';
    return TS_E_CORRUPT;
}

ts_status ts_s3_xml_parse_complete(const char *body, size_t len)
{
    ts_s3_slice all = {body, len}, res;
    size_t pos = 0;
    if (ts_s3_xml_next(all, &pos, "CompleteMultipartUploadResult", &res) != 1) goto fail;
    return TS_OK;
fail:
    return TS_E_CORRUPT;
}

ts_status ts_s3_xml_parse_delete(const char *body, size_t len,
                                 void (*cb)(const char *key, const char *code, const char *msg,
                                            void *opaque),
                                 void *opaque, size_t *ndeleted)
{
    ts_s3_slice all = {body, len}, res, e;
    size_t pos = 0;
    char key[TS_S3_KEY_MAX + 1], code[64], msg[256];
    *ndeleted = 0;
    if (ts_s3_xml_next(all, &pos, "DeleteResult", &res) != 1) goto fail;
    pos = 0;
    int r;
    while ((r = ts_s3_xml_next(res, &pos, "Deleted", &e)) == 1) (*ndeleted)++;
    if (r < 0) goto fail;
    pos = 0;
    while ((r = ts_s3_xml_next(res, &pos, "Error", &e)) == 1) {
        if (child_text(e, "Key", key, sizeof(key)) != 0) goto fail;
        if (child_text(e, "Code", code, sizeof(code)) != 0) code[0] = '\0';
        if (child_text(e, "Message", msg, sizeof(msg)) != 0) msg[0] = '\0';
        cb(key, code, msg, opaque);
    }
    if (r < 0) goto fail;
    return TS_OK;
fail:
    return TS_E_CORRUPT;
}
