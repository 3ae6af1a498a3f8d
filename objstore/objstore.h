/*
 * objstore.h — the object-store interface every backend implements.
 *
 * Bytes only: this layer knows nothing of segments, manifests or offsets.
 * Keys are '/'-separated UTF-8 strings relative to the store's root (the
 * URL's bucket + prefix). Backends:
 *   file:///abs/path          local directory (the embedded default)
 *   s3://bucket[/prefix]      S3-compatible store (AWS, MinIO, Ceph RGW)
 * and a fault-injecting wrapper for tests (objstore/faulty.h).
 *
 * Thread safety: one ts_objstore is shared by all worker threads; every
 * operation is safe to call concurrently. A writer belongs to one thread
 * at a time.
 *
 * Errors: TS_E_NOT_FOUND for a missing key (never retried),
 * TS_E_REMOTE_RETRIABLE for 5xx / throttling / resets / timeouts,
 * TS_E_AUTH for rejected credentials, TS_E_EXISTS when a conditional put
 * finds the key present, TS_E_CHECKSUM when a download fails the integrity
 * check, TS_E_REMOTE for other refusals. Backends retry retriable errors
 * internally within the operation deadline; what reaches the caller has
 * exhausted that budget.
 */
#ifndef TS_OBJSTORE_H
#define TS_OBJSTORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "tierstore.h"

typedef struct ts_objstore ts_objstore;
typedef struct ts_objstore_writer ts_objstore_writer;

/* Put flags. */
#define TS_PUT_IF_NONE_MATCH 0x1 /* fail with TS_E_EXISTS if the key exists */

/* Length meaning "to the end of the object" for ts_objstore_get. */
#define TS_OBJSTORE_TO_END UINT64_MAX

typedef struct ts_objstore_ops {
    const char *scheme; /* "file", "s3", "faulty" */
    ts_status (*put)(ts_objstore *os, const char *key, const void *data, size_t len,
                     unsigned flags, char *errstr, size_t errlen);
    ts_status (*writer_open)(ts_objstore *os, const char *key, ts_objstore_writer **out,
                             char *errstr, size_t errlen);
    ts_status (*get)(ts_objstore *os, const char *key, uint64_t offset, uint64_t len,
                     uint8_t **out, size_t *out_len, char *errstr, size_t errlen);
    ts_status (*head)(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                      size_t errlen);
    ts_status (*del)(ts_objstore *os, const char *key, char *errstr, size_t errlen);
    ts_status (*del_many)(ts_objstore *os, const char *const *keys, size_t n, char *errstr,
                          size_t errlen);
    ts_status (*list)(ts_objstore *os, const char *prefix,
                      int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                      char *errstr, size_t errlen);
    void (*destroy)(ts_objstore *os);
} ts_objstore_ops;

/* Every backend's struct begins with this (zeroed: backends calloc it). */
struct ts_objstore {
    const ts_objstore_ops *ops;
    char url[1024]; /* for messages; never holds credentials */
    /* Counted by the ts_objstore_* wrappers, so every backend is counted
     * the same way; relaxed atomics, any thread. */
    _Atomic uint64_t ctr_requests[TS_OBJSTORE_OP_COUNT][TS_OBJSTORE_OUTCOME_COUNT];
    _Atomic uint64_t ctr_bytes_put, ctr_bytes_got;
};

typedef struct ts_objstore_writer_ops {
    ts_status (*write)(ts_objstore_writer *w, const void *data, size_t len, char *errstr,
                       size_t errlen);
    ts_status (*commit)(ts_objstore_writer *w, char *errstr, size_t errlen);
    void (*abort)(ts_objstore_writer *w);
} ts_objstore_writer_ops;

struct ts_objstore_writer {
    const ts_objstore_writer_ops *ops;
    ts_objstore *os; /* set by ts_objstore_writer_open: whose counters it adds to */
};

/* Opens the store named by url. cfg supplies backend settings (S3 region,
 * endpoint, credentials, timeouts…); may be NULL for defaults. */
ts_status ts_objstore_open(const char *url, const ts_config *cfg, ts_objstore **out,
                           char *errstr, size_t errlen);
void ts_objstore_destroy(ts_objstore *os);

/* Stores a whole object in one request. Durable when it returns TS_OK. */
ts_status ts_objstore_put(ts_objstore *os, const char *key, const void *data, size_t len,
                          unsigned flags, char *errstr, size_t errlen);

/* Streaming upload with bounded memory: open, write any number of times,
 * then commit (object becomes visible and durable, atomically) or abort
 * (nothing becomes visible). commit and abort free the writer. */
ts_status ts_objstore_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                                  char *errstr, size_t errlen);
ts_status ts_objstore_writer_write(ts_objstore_writer *w, const void *data, size_t len,
                                   char *errstr, size_t errlen);
ts_status ts_objstore_writer_commit(ts_objstore_writer *w, char *errstr, size_t errlen);
void ts_objstore_writer_abort(ts_objstore_writer *w);

/* Reads [offset, offset+len) (len TS_OBJSTORE_TO_END for the rest). *out is
 * malloc'd; a short object yields fewer bytes only when the range runs past
 * its end. */
ts_status ts_objstore_get(ts_objstore *os, const char *key, uint64_t offset, uint64_t len,
                          uint8_t **out, size_t *out_len, char *errstr, size_t errlen);
ts_status ts_objstore_head(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                           size_t errlen);
/* Deleting a missing key is TS_OK. */
ts_status ts_objstore_delete(ts_objstore *os, const char *key, char *errstr, size_t errlen);
ts_status ts_objstore_delete_many(ts_objstore *os, const char *const *keys, size_t n,
                                  char *errstr, size_t errlen);
/* Calls cb for every key under prefix, in lexicographic order; cb returns
 * non-zero to stop early. */
ts_status ts_objstore_list(ts_objstore *os, const char *prefix,
                           int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                           char *errstr, size_t errlen);

/* Copies os's request counters (see ts_engine_stats). Thread: any. */
typedef struct ts_objstore_counters {
    uint64_t requests[TS_OBJSTORE_OP_COUNT][TS_OBJSTORE_OUTCOME_COUNT];
    uint64_t bytes_put, bytes_got;
} ts_objstore_counters;
void ts_objstore_counters_get(ts_objstore *os, ts_objstore_counters *out);

/* Backend constructors (used by ts_objstore_open; exposed for tests). */
ts_status ts_objstore_fs_open(const char *root_dir, ts_objstore **out, char *errstr,
                              size_t errlen);
ts_status ts_objstore_s3_open(const char *url, const ts_config *cfg, ts_objstore **out,
                              char *errstr, size_t errlen);

#endif
