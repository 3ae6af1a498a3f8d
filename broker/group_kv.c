/*
 * group_kv.c — committed offsets and producer-id blocks as etcd keys and
 * JSON values; the format is described once, in group_kv.h.
 */
#include "group_kv.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Numbers beyond this are not exact in a double: written as strings. */
#define EXACT_DOUBLE (1LL << 53)

/* One code point of s at *i (advanced); U+FFFD for a byte that does not
 * start a valid UTF-8 sequence (overlong, surrogate, beyond U+10FFFF). */
static uint32_t utf8_next(const unsigned char *s, size_t *i)
{
    unsigned char c = s[*i];
    int need = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (need < 0) {
        (*i)++;
        return 0xFFFD;
    }
    uint32_t cp = need == 0 ? c : need == 1 ? (c & 0x1Fu) : need == 2 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; k <= need; k++) {
        if ((s[*i + (size_t)k] & 0xC0) != 0x80) {
            (*i)++;
            return 0xFFFD;
        }
        cp = (cp << 6) | (s[*i + (size_t)k] & 0x3Fu);
    }
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return 0xFFFD;
    }
    *i += (size_t)need + 1;
    return cp;
}

int32_t group_java_hash(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t h = 0;
    for (size_t i = 0; u[i];) {
        uint32_t cp = utf8_next(u, &i);
        if (cp >= 0x10000) { /* a surrogate pair in UTF-16 */
            cp -= 0x10000;
            h = 31u * h + (0xD800u + (cp >> 10));
            h = 31u * h + (0xDC00u + (cp & 0x3FFu));
        } else {
            h = 31u * h + cp;
        }
    }
    return (int32_t)h;
}

int32_t group_partition_for(const char *group, int32_t n)
{
    int32_t h = group_java_hash(group);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h); /* Kafka's Utils.abs */
    return n > 0 ? a % n : 0;
}

int group_kv_key(char *buf, size_t cap, const char *prefix, const char *group, const char *topic,
                 int32_t partition)
{
    int n = snprintf(buf, cap, "%sgroups/%s/%s/%d", prefix, group, topic, partition);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int group_kv_key_parse(const char *key, size_t len, size_t prefix_len, char **group, char **topic,
                       int32_t *partition)
{
    *group = *topic = NULL;
    if (len <= prefix_len) return -1;
    const char *g = key + prefix_len, *end = key + len;
    const char *s2 = end;
    while (s2 > g && s2[-1] != '/') s2--; /* start of the partition */
    if (s2 == g || s2 == end) return -1;
    const char *s1 = s2 - 1;
    while (s1 > g && s1[-1] != '/') s1--; /* start of the topic */
    if (s1 == g || s1 == s2 - 1 || s1 - 1 == g) return -1;
    char num[16];
    size_t nl = (size_t)(end - s2);
    if (nl >= sizeof num) return -1;
    memcpy(num, s2, nl);
    num[nl] = 0;
    char *e = NULL;
    errno = 0;
    long p = strtol(num, &e, 10);
    if (errno || *e || p < 0 || p > INT32_MAX || (num[0] == '0' && num[1])) return -1;
    *group = strndup(g, (size_t)(s1 - 1 - g));
    *topic = strndup(s1, (size_t)(s2 - 1 - s1));
    if (!*group || !*topic) {
        free(*group);
        free(*topic);
        *group = *topic = NULL;
        return -1;
    }
    *partition = (int32_t)p;
    return 0;
}

/* An int64 as a JSON number when exact in a double, else as a decimal
 * string; written as raw text, never through a double's %g. */
static int add_i64(cJSON *o, const char *name, int64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)v);
    if (v > -EXACT_DOUBLE && v < EXACT_DOUBLE) return cJSON_AddRawToObject(o, name, num) ? 0 : -1;
    return cJSON_AddStringToObject(o, name, num) ? 0 : -1;
}

static int get_i64(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNumber(x)) {
        double d = x->valuedouble;
        if (d <= -EXACT_DOUBLE || d >= EXACT_DOUBLE || d != (double)(int64_t)d) return -1;
        *out = (int64_t)d;
        return 0;
    }
    if (cJSON_IsString(x)) {
        char *e = NULL;
        errno = 0;
        long long v = strtoll(x->valuestring, &e, 10);
        if (errno || !*x->valuestring || *e) return -1;
        *out = v;
        return 0;
    }
    return -1;
}

char *group_kv_encode(const group_kv_value *v)
{
    cJSON *o = cJSON_CreateObject();
    char *out = NULL;
    if (o && !add_i64(o, "offset", v->offset) && !add_i64(o, "leader_epoch", v->leader_epoch) &&
        (v->metadata ? cJSON_AddStringToObject(o, "metadata", v->metadata)
                     : cJSON_AddNullToObject(o, "metadata")) &&
        !add_i64(o, "commit_timestamp", v->commit_ms))
        out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

int group_kv_decode(const char *json, size_t len, group_kv_value *v)
{
    memset(v, 0, sizeof(*v));
    cJSON *o = cJSON_ParseWithLength(json, len);
    int64_t epoch = -1;
    int rc = -1;
    if (!cJSON_IsObject(o) || get_i64(o, "offset", &v->offset)) goto done;
    if (cJSON_GetObjectItemCaseSensitive(o, "leader_epoch") && get_i64(o, "leader_epoch", &epoch))
        goto done;
    if (epoch < -1 || epoch > INT32_MAX) goto done;
    v->leader_epoch = (int32_t)epoch;
    if (cJSON_GetObjectItemCaseSensitive(o, "commit_timestamp") &&
        get_i64(o, "commit_timestamp", &v->commit_ms))
        goto done;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    if (cJSON_IsString(m) && !(v->metadata = strdup(m->valuestring))) goto done;
    if (m && !cJSON_IsString(m) && !cJSON_IsNull(m)) goto done;
    rc = 0;
done:
    cJSON_Delete(o);
    if (rc) {
        free(v->metadata);
        v->metadata = NULL;
    }
    return rc;
}

size_t group_kv_chunk(const size_t *sizes, size_t n, size_t max_ops, size_t max_bytes)
{
    size_t k = 0, bytes = 0;
    while (k < n && k < max_ops && (k == 0 || bytes + sizes[k] <= max_bytes)) bytes += sizes[k++];
    return k;
}

char *pid_block_encode(int64_t next)
{
    cJSON *o = cJSON_CreateObject();
    char *out = o && !add_i64(o, "next", next) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return out;
}

int pid_block_decode(const char *json, size_t len, int64_t *next)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = cJSON_IsObject(o) ? get_i64(o, "next", next) : -1;
    cJSON_Delete(o);
    return rc;
}
