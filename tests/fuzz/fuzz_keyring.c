/* fuzz_keyring.c — libFuzzer target: the key ring parser (common/crypt.c)
 * on arbitrary bytes (a key ring file is operator input, read before
 * anything else at start), and the strict base64 decoder it uses. A ring
 * that parses must find every id it holds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_keyring *r = NULL;
    char err[256];
    if (ts_keyring_parse((const char *)data, size, "fuzz", &r, err, sizeof(err)) == TS_OK &&
        (ts_keyring_count(r) == 0 || ts_keyring_count(r) > TS_CRYPT_RING_MAX_KEYS))
        abort();
    ts_keyring_destroy(r);
    uint8_t out[64];
    for (size_t want = 0; want <= sizeof(out) && want <= size; want += 16)
        ts_b64_decode_exact((const char *)data, size, out, want);
    return 0;
}
