/*
 * topic_desc.c — the topic descriptor document: what a bucket says about a
 * topic beyond its partitions' manifests, so that an empty data directory
 * plus the bucket brings back every partition, also one that never
 * uploaded anything (index/README.md "Topic descriptors").
 *
 *   {"format":1,"topic":"orders","partitions":2,"written_ms":1764640000000}
 *
 * One small immutable object per change (tiering/topic_desc.c writes it),
 * plain JSON so that `aws s3 cp ... - | jq` reads it. Parsing is strict:
 * the document is untrusted bucket content, and a wrong count would bring
 * back partitions that never existed.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "index/index.h"

#define DESC_MAX_BYTES 65536
#define DESC_MAX_PARTITIONS 1000000

char *ts_index_topic_desc_json(const char *topic, int32_t partitions, int64_t written_ms)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char *txt = NULL;
    if (cJSON_AddNumberToObject(o, "format", 1) && cJSON_AddStringToObject(o, "topic", topic) &&
        cJSON_AddNumberToObject(o, "partitions", partitions) &&
        cJSON_AddNumberToObject(o, "written_ms", (double)written_ms))
        txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

static int whole_in(const cJSON *n, double lo, double hi)
{
    return cJSON_IsNumber(n) && n->valuedouble >= lo && n->valuedouble <= hi &&
           n->valuedouble == (double)(int64_t)n->valuedouble;
}

/* NULL when root is a valid descriptor of topic (*partitions set), else why not. */
static const char *desc_check(const cJSON *root, const char *topic, int32_t *partitions)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "topic");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "partitions");
    if (!whole_in(fmt, 1, 1)) return "\"format\" is not 1";
    if (!cJSON_IsString(t) || strcmp(t->valuestring, topic)) return "\"topic\" is not this topic";
    if (!whole_in(n, 1, DESC_MAX_PARTITIONS)) return "\"partitions\" is not an integer 1..1000000";
    *partitions = (int32_t)n->valuedouble;
    return NULL;
}

ts_status ts_index_topic_desc_parse(const char *key, const char *topic, const uint8_t *data,
                                    size_t len, int32_t *partitions, char *errstr, size_t errlen)
{
    const char *why = NULL;
    cJSON *root = NULL;
    char *copy = NULL;
    if (len == 0 || len > DESC_MAX_BYTES) why = "empty or larger than 64 KiB";
    else if (!(copy = malloc(len + 1)))
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    if (copy) {
        memcpy(copy, data, len);
        copy[len] = '\0';
        root = cJSON_ParseWithLength(copy, len);
        if (!cJSON_IsObject(root)) why = "not a JSON object";
    }
    if (!why) why = desc_check(root, topic, partitions);
    cJSON_Delete(root);
    free(copy);
    if (!why) return TS_OK;
    return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                      "topic %s: descriptor %s is not a valid topic descriptor (%s); fix or "
                      "delete the object",
                      topic, key, why);
}
