/*
 * fuzz_kafka_client.c — libFuzzer target for the answers a follower parses
 * from its leader (broker/kafka_client.c): Fetch v12 and
 * OffsetForLeaderEpoch v4 responses.
 *
 * A peer broker's bytes are untrusted (an older, restarted or broken peer,
 * or whatever answers on its address): no crash, no out-of-bounds read
 * (ASan watches), and what is accepted must be consistent (checked below:
 * every Records slice lies inside the input).
 *
 * The first byte picks the parser: even Fetch, 3 SaslHandshake v1, 5
 * SaslAuthenticate v2 (the login on a SASL inter-broker listener), other odd
 * values OffsetForLeaderEpoch.
 *
 *   CC=clang cmake -S . -B build-fuzz -DTS_FUZZ=ON
 *   make -C build-fuzz fuzz_kafka_client
 *   scripts/fuzz.sh 30 fuzz_kafka_client
 *
 * Seeds: tests/fuzz/corpus/fuzz_kafka_client/ (make_corpus.py), each behind
 * its selector byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kafka_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int which = data[0] & 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    karena a;
    karena_init(&a, 4 * n + 65536);
    char err[256];
    if (which == 0) {
        kc_fetch_resp r;
        if (kafka_read_FetchResponse(p, n, &a, &r, err, sizeof err) == 0) {
            for (size_t i = 0; i < r.nparts; i++) {
                const kslice *s = &r.parts[i].records;
                if (s->len > 0 && (s->p < p || s->p + s->len > p + n)) abort();
                if (!r.parts[i].topic) abort();
            }
        }
    } else if (data[0] == 3) {
        kc_sasl_handshake_resp r;
        if (kafka_read_SaslHandshakeResponse(p, n, &a, &r, err, sizeof err) == 0)
            for (size_t i = 0; i < r.nmechanisms; i++)
                if (!r.mechanisms[i]) abort();
    } else if (data[0] == 5) {
        kc_sasl_auth_resp r;
        if (kafka_read_SaslAuthenticateResponse(p, n, &a, &r, err, sizeof err) == 0 &&
            r.auth_bytes.len > 0 &&
            (r.auth_bytes.p < p || r.auth_bytes.p + r.auth_bytes.len > p + n))
            abort();
    } else {
        kc_epoch_resp r;
        if (kafka_read_OffsetForLeaderEpochResponse(p, n, &a, &r, err, sizeof err) == 0)
            for (size_t i = 0; i < r.nparts; i++)
                if (!r.parts[i].topic) abort();
    }
    karena_free(&a);
    return 0;
}
