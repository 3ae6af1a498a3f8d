/*
 * manifest_json.h — private to index/: the manifest document as the JSON
 * writer and parser see it, shared by manifest_json.c and index.c.
 *
 * One document type serves both copies of a manifest: the bucket's (the
 * public format of index/README.md) and the local file's, which adds a few
 * fields only this process needs after a restart (which version is durable
 * in the bucket, which entry arrived in which version, which object keys
 * still wait for deletion). Keeping both in one renderer/parser means the
 * local file can never drift from what the bucket holds.
 */
#ifndef TS_INDEX_MANIFEST_JSON_H
#define TS_INDEX_MANIFEST_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "index/index.h"
#include "tierstore_names.h" /* ts_topic_name_valid: the one topic-name rule */

#define TS_MANIFEST_FORMAT 1 /* the legacy writer's format (ts_manifest_to_json) */
#define TS_MANIFEST_FORMAT_2 2
#define TS_TOPIC_NAME_MAX TS_TOPIC_NAME_LEN_MAX
#define TS_MANIFEST_MAX_PIECES 1000000

enum { TS_MANIFEST_HEAD = 0, TS_MANIFEST_PIECE = 1 };

/* A piece as its head describes it (format 2). */
typedef struct ts_manifest_piece {
    char key[TS_INDEX_KEY_MAX];
    int64_t base_offset, last_offset;  /* first entry's base, last entry's last */
    int64_t min_timestamp, max_timestamp; /* over the entries' first/max timestamps, -1 unknown */
    uint64_t count;                    /* entries in the piece */
    uint64_t raw_bytes, stored_bytes;  /* sums over the entries */
    uint64_t bytes;                    /* the piece object's length */
    uint32_t crc32c;                   /* CRC-32C of the piece object */
    uint64_t added_version;            /* local file only: head version that introduced it */
} ts_manifest_piece;

typedef struct ts_manifest_doc {
    int format;            /* 1 or 2 (render: 0 counts as 1) */
    int kind;              /* format 2: TS_MANIFEST_HEAD or TS_MANIFEST_PIECE */
    char topic[TS_TOPIC_NAME_MAX + 1];
    int32_t partition;
    uint64_t version;      /* heads */
    int64_t leader_epoch;  /* heads of format 2; -1 until the cluster fences commits */
    int64_t log_start_offset; /* heads */
    ts_index_epoch *epochs;   /* heads of format 2: leader_epochs (optional), nepochs */
    size_t nepochs;
    int64_t piece_base, piece_last; /* pieces */
    ts_manifest_piece *pieces; /* heads of format 2: npieces, base ascending */
    size_t npieces;
    ts_segment_meta *segs; /* n entries, base_offset ascending (a head's tail, a piece's run) */
    size_t n;
    /* Local-file extras (rendered and parsed only when `local` is set). */
    int local;
    uint64_t remote_version;    /* last version known durable in the bucket */
    uint64_t *added_versions;   /* n entries: version that introduced segs[i] */
    char **pending_deletes;     /* object keys removed by retention, not yet handed out */
    size_t npending;
    char **dropped;             /* format 2: piece keys no longer named by the head ... */
    uint64_t *dropped_versions; /* ... since this version (delete once no kept head names them) */
    size_t ndropped;
} ts_manifest_doc;

/* Renders doc as JSON (NUL-terminated, malloc'd). Validates every entry
 * first, so that nothing is ever written that the parser would refuse:
 * TS_E_INVAL with a message naming the entry otherwise. */
ts_status ts_manifest_render(const ts_manifest_doc *doc, char **out, size_t *out_len,
                             char *errstr, size_t errlen);

/* Parses untrusted bytes into *doc (zeroed first; free with
 * ts_manifest_doc_free even on failure). With local non-zero the local-file
 * extras are read too (optional: absent extras mean "nothing is durable
 * remotely"). TS_E_CORRUPT naming the field and entry on any defect. */
ts_status ts_manifest_parse(const char *json, size_t len, int local, ts_manifest_doc *doc,
                            char *errstr, size_t errlen);

void ts_manifest_doc_free(ts_manifest_doc *doc);

/* Checks one entry on its own (sizes, chunk table, key). `what` prefixes
 * the message ("segments[3]"). TS_E_CORRUPT on failure. */
ts_status ts_manifest_check_segment(const ts_segment_meta *seg, const char *what, char *errstr,
                                    size_t errlen);

/* Whether every key the doc names lies under its own partition (exposed for
 * the piece key check of index.c). */
int ts_manifest_piece_key_owned(const char *topic, int32_t partition, const char *key);

/* Deep equality of two entries (fields and chunk tables). */
int ts_segment_meta_equal(const ts_segment_meta *a, const ts_segment_meta *b);

#endif
