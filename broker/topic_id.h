/*
 * topic_id.h — which incarnation of a topic this broker's local replicas
 * belong to (Kafka's KIP-516 partition.metadata), one file per topic under
 * <log.dirs>/.broker/topic-ids/. Pure libc: unit-tested alone
 * (unit.broker_topic_id).
 *
 * Why per topic in .broker/ and not per partition next to the segments: the
 * partition directories are the storage's (the broker knows them only
 * through the plugin ABI), an id belongs to the topic as a whole, and one
 * file per topic is read before any of its partitions opens, so a stale
 * replica is reset before the engine ever looks at it. Each file is written
 * by the one job that opens that topic's replicas (cluster.c: at most one
 * per topic at a time), so no two writers meet on a file.
 *
 * File format (Kafka's partition.metadata text, byte for byte):
 *   "version: 0\n"
 *   "topic_id: <22 chars of base64url, the id of topics/<t> in etcd>\n"
 * and nothing else. Replaced durably: "<topic>~tmp" (a '~' no topic name
 * holds), fsync, rename, fsync of the directory.
 */
#ifndef TS_BROKER_TOPIC_ID_H
#define TS_BROKER_TOPIC_ID_H

#include <stddef.h>

#define TOPIC_ID_LEN 22
#define TOPIC_ID_FILE_MAX 256 /* bigger is corrupt */

/* 1 when id is 22 chars of [A-Za-z0-9_-] (cluster_new_topic_id's). */
int topic_id_valid(const char *id);
/* The file's bytes for id into out; returns their length, 0 when id is not
 * valid or out too small. */
size_t topic_id_format(const char *id, char *out, size_t outlen);
/* 0 and id (TOPIC_ID_LEN + 1 bytes) from a file's bytes; -1 with err saying
 * what is wrong when they are not exactly the format above. */
int topic_id_parse(const char *buf, size_t len, char *id, char *err, size_t errlen);

/* The recorded id of topic under dir: 1 and id, 0 when none is recorded, -1
 * with err naming the file when it cannot be read or does not parse (a
 * caller keeps the topic's replicas closed: it cannot tell whose they are). */
int topic_id_read(const char *dir, const char *topic, char *id, char *err, size_t errlen);
/* Records id for topic durably (creating dir); 0, or -1 with err. */
int topic_id_write(const char *dir, const char *topic, const char *id, char *err, size_t errlen);
/* Removes topic's record (none: 0); 0, or -1 with err. */
int topic_id_remove(const char *dir, const char *topic, char *err, size_t errlen);
/* Calls fn for every topic with a record under dir (a missing dir: none),
 * skipping names that are not topic names (temp files). 0, or -1 with err. */
int topic_id_list(const char *dir, void (*fn)(const char *topic, void *arg), void *arg,
                  char *err, size_t errlen);

#endif
