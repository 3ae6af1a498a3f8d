/*
 * uploader.h — turns one closed local segment into one immutable remote
 * object and commits it to the shadow index.
 *
 * Object format ("seekable zstd"): the raw segment is cut into chunks at
 * record-batch boundaries (about chunk_bytes of raw data each; a batch
 * larger than that is a chunk of its own). Each chunk is one independent
 * zstd frame with its content size and checksum. The frames are followed by
 * the object's own chunk table (a skippable frame, layout in
 * index/chunk_table.c: offsets, positions, lengths and CRCs of every chunk)
 * and a seek table in zstd's seekable format (a skippable frame), so:
 *   - `zstd -d object` yields exactly the segment bytes (skippable frames
 *     are ignored by every zstd decoder);
 *   - a reader fetches only the frames covering an offset, located through
 *     the chunk table frame (or the seek table, for other tools); the
 *     manifest entry records only where the chunk table frame is.
 * Seek table layout (little-endian, per zstd's seekable format spec):
 *   u32 0x184D2A5E (skippable magic) | u32 frame size = 8 * n + 9 |
 *   n x { u32 compressed size, u32 decompressed size } |
 *   u32 n | u8 descriptor (0: no per-frame checksums) | u32 0x8F92EAB1
 *
 * Order of a commit (crash-safe): the object is written and committed
 * (durable) first; only then is the manifest entry added. A crash in
 * between leaves an orphan object under a key no manifest names, never an
 * entry pointing at a missing object. Every attempt uses a fresh key
 * (random attempt id), so a retry never overwrites anything.
 *
 * Encrypted objects (req->keyring set): each zstd frame is sealed with the
 * object's data key (AES-256-GCM: nonce | ciphertext | tag, AAD = object
 * key + chunk index, common/crypt.h); the chunk table's positions, lengths
 * and stored CRC-32C are those of the sealed bytes, its raw CRC-32C that of
 * the plain chunk, and its flags say "sealed". The wrapped data key goes
 * into the manifest entry. `zstd -d` no longer applies (by design); the
 * chunk table and seek table stay in the clear (offsets, timestamps,
 * sizes, CRCs: what the manifest already shows).
 *
 * Memory per upload: one raw chunk + one compressed chunk (+ one sealed
 * chunk when encrypting) + what the object-store writer buffers (S3: part
 * size x parts in flight).
 *
 * Thread: runs on an upload worker (the scheduler's pool, sched.h); no
 * locks held by the caller. The segment file must not change while it is read (closed
 * segments are immutable).
 */
#ifndef TS_UPLOADER_H
#define TS_UPLOADER_H

#include <stddef.h>
#include <stdint.h>
#include "tierstore.h"
#include "index/index.h"
#include "objstore/objstore.h"

typedef struct ts_upload_req {
    const char *topic;
    int32_t partition;
    const char *segment_path; /* the closed .log file */
    int64_t base_offset;
    size_t chunk_bytes;       /* remote.storage.chunk.bytes */
    int compression_level;    /* remote.storage.compression.level */
    size_t max_batch_bytes;   /* message.max.bytes, bounds one batch */
    /* Encryption at rest (remote.storage.encryption.*): with a key ring,
     * the object gets a fresh data key wrapped under key_id, and every
     * chunk is sealed after compression (common/crypt.h); NULL: plain. */
    const ts_keyring *keyring;
    const char *key_id;
    /* Where the upload starts in the file (0: the whole segment). A new
     * leader continues the manifest exactly at its end, which may lie
     * inside a local segment: the batch at base_offset starts here. */
    uint64_t start_pos;
    const ts_index_epoch *epochs; /* the range's leader epochs, recorded in the head */
    size_t nepochs;
} ts_upload_req;

/* The two steps of an upload, which the scheduler (sched.h) runs apart so
 * that several segments of one partition build their objects in parallel
 * while their entries still join the manifest in offset order.
 *
 * Step 1: reads the segment from req->start_pos, writes the object under a
 * fresh key and commits it (durable). On success *meta describes the
 * object (free with ts_segment_meta_clear); nothing is in the manifest yet:
 * until step 2 the object is an orphan (the engine's sweep collects it
 * after a crash). TS_E_NOT_FOUND when the segment file vanished. On failure
 * nothing stays behind (the writer is aborted). */
ts_status ts_uploader_build_object(ts_objstore *os, const ts_upload_req *req,
                                   ts_segment_meta *meta, char *errstr, size_t errlen);

/* Step 2: adds the entry of a built object to idx (with req's epochs).
 * *committed says whether the entry is in the manifest: always on TS_OK,
 * and on a failure of the remote put after the local commit ("remote
 * manifest pending": the engine retries with ts_index_sync_remote). An
 * entry that was not committed deletes its object best-effort, except when
 * fenced (TS_E_FENCED: a newer leader owns the manifest; the object stays
 * an orphan for the sweep). */
ts_status ts_uploader_commit_entry(ts_objstore *os, ts_index *idx, const ts_upload_req *req,
                                   const ts_segment_meta *meta, int *committed, char *errstr,
                                   size_t errlen);

/* Step 2 for a run of built objects, in offset order, as ONE manifest
 * version (ts_index_add_group: one local head write, one head put), so
 * objects that finished together cost one head PUT. Settles the first
 * k >= 1 items and returns k: each gets st and committed as
 * ts_uploader_commit_entry gives them for one (committed: in the local
 * manifest; TS_E_FENCED: none of them in the bucket, objects left for the
 * sweep; the first refused TS_E_EXISTS/TS_E_INVAL/local failure: k is 1
 * and its object deleted). Items from k on are untouched: commit them in a
 * later call, unless item k-1 is not committed (then none may be). */
typedef struct ts_upload_commit {
    const ts_upload_req *req;    /* in */
    const ts_segment_meta *meta; /* in: the built object */
    ts_status st;                /* out */
    int committed;               /* out */
    char *err;                   /* the caller's buffer: why, when st != TS_OK */
    size_t errlen;
} ts_upload_commit;
size_t ts_uploader_commit_group(ts_objstore *os, ts_index *idx, ts_upload_commit *c, size_t n);

/* Deletes a built object that will not be committed (best effort: what
 * stays is an orphan for the sweep). */
void ts_uploader_discard_object(ts_objstore *os, const ts_segment_meta *meta);

/* Both steps in one call. On success *out (if not NULL) receives a copy of
 * the committed entry (free with ts_segment_meta_clear); also when only the
 * remote manifest put failed. TS_E_NOT_FOUND when the segment file vanished
 * (deleted by retention meanwhile): nothing to do. On failure after the
 * object was written, the orphan object is deleted best-effort. */
ts_status ts_uploader_upload_segment(ts_objstore *os, ts_index *idx, const ts_upload_req *req,
                                     ts_segment_meta *out, char *errstr, size_t errlen);

/* Writes the seek table for n frames into out (8 * n + 17 bytes). */
size_t ts_uploader_seek_table(const ts_chunk_meta *chunks, uint32_t n, uint8_t *out);

#endif
