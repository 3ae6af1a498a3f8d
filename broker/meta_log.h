/*
 * meta_log.h — the record format of <log.dirs>/.broker/offsets, the
 * committed-offsets log (pure: no broker state, unit-tested alone).
 *
 *   file    = header record*
 *   header  = "tierbroker-offsets 1\n"
 *   record  = commit | delete
 *   commit  = "o " crc " " hex(group) " " hex(topic) " " partition " " offset " "
 *             hex(metadata) "\n"
 *   delete  = "d " crc " " hex(group) " " hex(topic) " " partition "\n"
 *             (OffsetDelete, DeleteGroups: the group's offset of that
 *             partition is gone; a later commit sets it again)
 *   crc     = CRC-32 (zlib) of the bytes after "o <crc> " / "d <crc> " up to
 *             the newline, as 8 lowercase hex digits
 *   partition, offset: signed decimals (partition 0..INT32_MAX)
 *
 * Every string field is hex (a client's bytes can never end a record or
 * start another), so a record holds exactly one newline, its last byte; a
 * crash during an append leaves a prefix without it, which fails to parse,
 * as does any damaged byte (CRC; the type letter is not covered, but the
 * two types differ in their field count). A broker older than delete
 * records skips them as damaged: on that broker deleted offsets return.
 */
#ifndef TS_BROKER_META_LOG_H
#define TS_BROKER_META_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "kafka_wire.h"

#define META_OFFSETS_HEADER "tierbroker-offsets 1\n"

/* Appends one commit record to w (w->err set when its cap is hit). */
void meta_log_encode(kw *w, const char *group, const char *topic, int32_t partition,
                     int64_t offset, const char *metadata);
/* Appends one delete record to w. */
void meta_log_encode_delete(kw *w, const char *group, const char *topic, int32_t partition);

typedef struct meta_log_rec {
    char *group, *topic, *metadata; /* malloc'd, NUL-terminated; metadata "" = none */
    int32_t partition;
    int64_t offset; /* -1 for a delete record */
    int deleted;    /* a delete record */
} meta_log_rec;

/* Parses one record without its newline; 0 and *out filled (free with
 * meta_log_rec_free), or -1 when it is not a whole, intact record. */
int meta_log_decode(const char *line, size_t len, meta_log_rec *out);
void meta_log_rec_free(meta_log_rec *r);

/* Lowercase hex of s into w; s back from hex (NULL on odd length, a
 * non-hex digit or an encoded NUL byte). */
void meta_hex(kw *w, const char *s);
char *meta_unhex(const char *s, size_t n);

#endif
