/* fuzz_sasl.c — libFuzzer target: the SASL messages a client sends before it
 * is authenticated (auth/scram.c), the broker's first untrusted bytes on a
 * SASL listener. The first byte picks the message: 0 PLAIN; 1 a SCRAM
 * client-first alone; 2 a whole SCRAM exchange, the rest split at its first
 * NUL into client-first and client-final, checked against a fixed
 * credential (random proofs must fail, nothing may overrun). With the top
 * bit of the first byte set, the client side (auth/scram_client.c, what a
 * follower parses from its leader): the rest split at its first NUL into
 * server-first (every "%N" replaced by the client nonce, so the fuzzer gets
 * past the nonce check) and server-final, which must never verify. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    char err[256], user[TS_SCRAM_MAX_NAME], pw[256], out[512];
    int mech = (data[0] & 0x10) ? TS_SCRAM_SHA256 : TS_SCRAM_SHA512;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    static ts_scram_server s;
    static ts_scram_cred cred;
    static int have;
    if (data[0] & 0x80) {
        ts_scram_client c;
        char first[512], sf[2048], final[1024];
        const uint8_t *z = memchr(p, 0, n);
        size_t l1 = z ? (size_t)(z - p) : n, o = 0;
        if (ts_scram_client_first(&c, mech, "fuzz", first, sizeof first, err, sizeof err)) abort();
        for (size_t i = 0; i < l1 && o + 64 < sizeof sf; i++) {
            if (p[i] == '%' && i + 1 < l1 && p[i + 1] == 'N') {
                o += (size_t)snprintf(sf + o, sizeof sf - o, "%s", c.nonce);
                i++;
            } else {
                sf[o++] = (char)p[i];
            }
        }
        if (ts_scram_client_final(&c, "pw", 2, sf, o, final, sizeof final, err, sizeof err) == 0 &&
            z && ts_scram_client_verify(&c, (const char *)z + 1, n - l1 - 1, err, sizeof err) == 0)
            abort(); /* no fixed input holds the signature of a random nonce */
        return 0;
    }
    switch (data[0] % 3) {
    case 0:
        if (ts_sasl_plain_parse(p, n, user, sizeof user, pw, sizeof pw, err, sizeof err) == 0 &&
            (!user[0] || !pw[0]))
            abort();
        break;
    case 1:
        if (ts_scram_parse_client_first(&s, mech, (const char *)p, n, err, sizeof err) == 0 &&
            !s.user[0])
            abort();
        break;
    default: {
        const uint8_t *z = memchr(p, 0, n);
        if (!z) return 0;
        if (!have) {
            static const uint8_t salt[16] = "fuzz-salt-bytes";
            if (ts_scram_cred_make(TS_SCRAM_SHA512, "pw", 2, salt, sizeof salt, 4096, &cred, err,
                                   sizeof err))
                abort();
            have = 1;
        }
        if (ts_scram_parse_client_first(&s, TS_SCRAM_SHA512, (const char *)p, (size_t)(z - p), err,
                                        sizeof err) != 0 ||
            ts_scram_server_challenge(&s, &cred, err, sizeof err) != 0)
            return 0;
        if (ts_scram_server_final(&s, (const char *)z + 1, n - (size_t)(z + 1 - p), out,
                                  sizeof out, err, sizeof err) == 0)
            abort(); /* the server nonce is random: no fixed input can prove it */
        break;
    }
    }
    return 0;
}
