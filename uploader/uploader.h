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
 * Memory per upload: one raw chunk + one compressed chunk + what the
 * object-store writer buffers (S3: part size x parts in flight).
 *
 * Thread: runs on an upload worker (tiering's pool); no locks held by the
 * caller. The segment file must not change while it is read (closed
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
    /* Where the upload starts in the file (0: the whole segment). A new
     * leader continues the manifest exactly at its end, which may lie
     * inside a local segment: the batch at base_offset starts here. */
    uint64_t start_pos;
    const ts_index_epoch *epochs; /* the range's leader epochs, recorded in the head */
    size_t nepochs;
} ts_upload_req;

/* Uploads the segment and adds its entry to idx. On success *out (if not
 * NULL) receives a copy of the committed entry (free with
 * ts_segment_meta_clear). TS_E_NOT_FOUND when the segment file vanished
 * (deleted by retention meanwhile): nothing to do. On failure after the
 * object was written, the orphan object is deleted best-effort. */
ts_status ts_uploader_upload_segment(ts_objstore *os, ts_index *idx, const ts_upload_req *req,
                                     ts_segment_meta *out, char *errstr, size_t errlen);

/* Writes the seek table for n frames into out (8 * n + 17 bytes). */
size_t ts_uploader_seek_table(const ts_chunk_meta *chunks, uint32_t n, uint8_t *out);

#endif
