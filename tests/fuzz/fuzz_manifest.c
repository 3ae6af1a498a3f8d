/*
 * fuzz_manifest.c — libFuzzer target for the manifest parser.
 *
 * Manifests are read back from the bucket, which other processes and
 * people can write, so ts_manifest_from_json must survive any bytes: no
 * crash, no leak, no out-of-bounds read (ASan watches), and whatever it
 * accepts must be something the writer can write again and the parser read
 * back to the same state (checked below: accept => round trip).
 *
 *   CC=clang cmake -S . -B build-fuzz -DTS_FUZZ=ON
 *   make -C build-fuzz fuzz_manifest
 *   scripts/fuzz.sh 30 fuzz_manifest
 *
 * Seeds: real manifests in tests/fuzz/corpus/fuzz_manifest/ (written by the
 * engine; tests/fuzz/make_corpus.py regenerates them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char topic[256], err[512];
    int32_t part;
    uint64_t version;
    int64_t lso;
    ts_segment_meta *segs = NULL;
    size_t n = 0;
    if (ts_manifest_from_json((const char *)data, size, topic, sizeof(topic), &part, &version, &lso,
                              &segs, &n, err, sizeof(err)) != TS_OK)
        return 0;

    /* Accepted input must round-trip: render, parse again, compare. */
    char *json = NULL;
    size_t len = 0;
    if (ts_manifest_to_json(topic, part, version, lso, segs, n, &json, &len) != TS_OK) abort();
    ts_segment_meta *again = NULL;
    size_t n2 = 0;
    int64_t lso2;
    uint64_t v2;
    if (ts_manifest_from_json(json, len, NULL, 0, NULL, &v2, &lso2, &again, &n2, err,
                              sizeof(err)) != TS_OK)
        abort();
    if (n2 != n || v2 != version || lso2 != lso) abort();
    for (size_t i = 0; i < n; i++) {
        if (again[i].base_offset != segs[i].base_offset ||
            again[i].chunk_count != segs[i].chunk_count ||
            strcmp(again[i].object_key, segs[i].object_key) || !again[i].chunks != !segs[i].chunks ||
            (segs[i].chunks && memcmp(again[i].chunks, segs[i].chunks,
                                      (size_t)segs[i].chunk_count * sizeof(ts_chunk_meta))))
            abort();
        /* Format-2 entries name their chunk-table frame instead (chunks
         * NULL); an encrypted one's envelope must survive as it is. */
        if (again[i].sealed != segs[i].sealed ||
            (segs[i].sealed && (strcmp(again[i].key_id, segs[i].key_id) ||
                                memcmp(again[i].wrapped_key, segs[i].wrapped_key,
                                       sizeof(segs[i].wrapped_key)))))
            abort();
    }
    free(json);
    ts_index_snapshot_free(again, n2);
    ts_index_snapshot_free(segs, n);
    return 0;
}
