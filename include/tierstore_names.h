/*
 * tierstore_names.h — Kafka's topic-name rule, header-only.
 *
 * Both sides of the plugin ABI need the same rule: the engine (topic
 * directories and bucket keys are built from the name) and the broker
 * (CreateTopics, Metadata, its own files), which may include no engine
 * header and link no engine library. So the one implementation is a
 * static inline here, included by tierstore.h, by index/manifest_json.h (the
 * manifest writer and parser) and directly by the broker.
 */
#ifndef TIERSTORE_NAMES_H
#define TIERSTORE_NAMES_H

#include <string.h>

/* Longest topic name Kafka accepts. */
#define TS_TOPIC_NAME_LEN_MAX 249

/* 1 when name is a valid Kafka topic name: 1..249 characters of
 * [A-Za-z0-9._-], and neither "." nor "..". NULL is invalid. */
static inline int ts_topic_name_valid(const char *name)
{
    size_t n = name ? strnlen(name, TS_TOPIC_NAME_LEN_MAX + 1) : 0;
    if (n == 0 || n > TS_TOPIC_NAME_LEN_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

#endif
