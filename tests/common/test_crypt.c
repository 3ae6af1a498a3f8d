/* test_crypt.c — unit tests of common/crypt.c: the key ring parser (good
 * rings, every refusal with its line), the file's owner/mode check, the
 * strict base64 decoder, key wrap and chunk sealing (round trips, and that
 * a flipped byte, another object, another chunk index or another KEK id
 * fails the tag). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crypt.h"
#include "tt.h"

/* base64 of 32 bytes 0x00..0x1f and of 32 bytes 0xff */
#define K0 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define K1 "//////////////////////////////////////////8="

static char g_dir[] = "/tmp/ts-test-crypt-XXXXXX";

static ts_status parse(const char *text, ts_keyring **r, char *err, size_t errlen)
{
    return ts_keyring_parse(text, strlen(text), "ring.txt", r, err, errlen);
}

TT_TEST(keyring_parses_ids_comments_blanks_and_spaces)
{
    char err[512];
    ts_keyring *r = NULL;
    TT_OKE(parse("# keys\n\nk1=" K0 "\n  old.key-2 = " K1 "  \r\n", &r, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_keyring_count(r), 2);
    const uint8_t *k = ts_keyring_find(r, "k1");
    TT_ASSERT(k && k[0] == 0 && k[31] == 31);
    k = ts_keyring_find(r, "old.key-2");
    TT_ASSERT(k && k[0] == 0xff && k[31] == 0xff);
    TT_ASSERT(ts_keyring_find(r, "k2") == NULL);
    ts_keyring_destroy(r);
    TT_OKE(parse("last=" K0, &r, err, sizeof(err)), err); /* no final newline */
    TT_ASSERT(ts_keyring_find(r, "last") != NULL);
    ts_keyring_destroy(r);
}

static void refused(const char *text, const char *want)
{
    char err[512] = "";
    ts_keyring *r = NULL;
    ts_status st = parse(text, &r, err, sizeof(err));
    TT_ASSERT_EQ_INT(st, TS_E_CONFIG);
    TT_ASSERT(r == NULL);
    TT_ASSERT_MSG(strstr(err, want) && strstr(err, "ring.txt"), "'%s' lacks '%s'", err, want);
}

TT_TEST(keyring_refuses_bad_lines_naming_them)
{
    refused("k1=" K0 "\nk2=AAEC\n", "line 2 has a key that is not the base64 of exactly 32");
    refused("k1=" K0 "A\n", "line 1 has a key that is not the base64");
    refused("k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8fHw==\n", "not the base64 of exactly");
    refused("k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh*=\n", "not the base64");
    refused("k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n", "not the base64"); /* non-canonical */
    refused("k1 AAECAwQF\n", "line 1 is not id=base64(key)");
    refused("=" K0 "\n", "empty or longer than 32");
    refused("a/b=" K0 "\n", "outside [A-Za-z0-9._-]");
    refused("k123456789012345678901234567890123=" K0 "\n", "longer than 32");
    refused("k1=" K0 "\nk1=" K1 "\n", "line 2 repeats a key id");
    refused("# nothing\n\n", "holds no key");
    refused("", "holds no key");
    char nul[64] = "k1=AAEC";
    nul[4] = '\0';
    char err[256];
    ts_keyring *r = NULL;
    TT_ASSERT_EQ_INT(ts_keyring_parse(nul, 7, "ring.txt", &r, err, sizeof(err)), TS_E_CONFIG);
}

static void write_ring(const char *path, mode_t mode)
{
    FILE *f = fopen(path, "w");
    fputs("k1=" K0 "\n", f);
    fclose(f);
    chmod(path, mode);
}

TT_TEST(keyring_file_needs_owner_only_mode)
{
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/ring", g_dir);
    ts_keyring *r = NULL;
    write_ring(path, 0644);
    TT_ASSERT_EQ_INT(ts_keyring_load(path, &r, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT_MSG(strstr(err, path) && strstr(err, "0644") && strstr(err, "chmod 600"), "%s", err);
    write_ring(path, 0640);
    TT_ASSERT_EQ_INT(ts_keyring_load(path, &r, err, sizeof(err)), TS_E_CONFIG);
    write_ring(path, 0600);
    TT_OKE(ts_keyring_load(path, &r, err, sizeof(err)), err);
    ts_keyring_destroy(r);
    write_ring(path, 0400);
    TT_OKE(ts_keyring_load(path, &r, err, sizeof(err)), err);
    ts_keyring_destroy(r);
    snprintf(path, sizeof(path), "%s/absent", g_dir);
    TT_ASSERT_EQ_INT(ts_keyring_load(path, &r, err, sizeof(err)), TS_E_CONFIG);
    TT_ASSERT(strstr(err, path) != NULL);
}

TT_TEST(base64_round_trips_every_length)
{
    uint8_t in[40], out[40];
    char b[TS_B64_LEN(40)];
    for (size_t i = 0; i < sizeof(in); i++) in[i] = (uint8_t)(i * 37 + 1);
    for (size_t n = 1; n <= sizeof(in); n++) {
        ts_b64_encode(in, n, b);
        TT_ASSERT_EQ_INT(strlen(b), TS_B64_LEN(n) - 1);
        TT_ASSERT(ts_b64_decode_exact(b, strlen(b), out, n) == 0);
        TT_ASSERT(!memcmp(in, out, n));
        TT_ASSERT(ts_b64_decode_exact(b, strlen(b), out, n + 1) != 0);
    }
}

TT_TEST(wrap_and_seal_round_trip_and_bind_their_context)
{
    char err[512];
    ts_keyring *r = NULL;
    TT_OKE(parse("k1=" K0 "\nk2=" K1 "\n", &r, err, sizeof(err)), err);
    uint8_t dk[32], dk2[32], w[TS_CRYPT_WRAPPED_LEN];
    TT_OK(ts_crypt_new_data_key(dk, err, sizeof(err)));
    TT_OKE(ts_crypt_wrap(r, "k1", "t/0/segments/a", dk, w, err, sizeof(err)), err);
    TT_OKE(ts_crypt_unwrap(r, "k1", "t/0/segments/a", w, dk2, err, sizeof(err)), err);
    TT_ASSERT(!memcmp(dk, dk2, 32));
    TT_ASSERT_EQ_INT(ts_crypt_unwrap(r, "k2", "t/0/segments/a", w, dk2, err, sizeof(err)),
                     TS_E_CHECKSUM);
    TT_ASSERT_EQ_INT(ts_crypt_unwrap(r, "k1", "t/0/segments/b", w, dk2, err, sizeof(err)),
                     TS_E_CHECKSUM);
    TT_ASSERT_EQ_INT(ts_crypt_unwrap(r, "gone", "t/0/segments/a", w, dk2, err, sizeof(err)),
                     TS_E_CONFIG);
    TT_ASSERT_MSG(strstr(err, "'gone'") && strstr(err, "ring.txt"), "%s", err);

    const char *msg = "a chunk of zstd bytes, sealed";
    size_t n = strlen(msg);
    uint8_t sealed[128], opened[128];
    TT_OKE(ts_crypt_seal_chunk(dk, "obj", 3, (const uint8_t *)msg, n, sealed, err, sizeof(err)),
           err);
    TT_ASSERT(memmem(sealed, n + TS_CRYPT_CHUNK_OVERHEAD, "sealed", 6) == NULL);
    TT_OKE(ts_crypt_open_chunk(dk, "obj", 3, sealed, n + 28, opened, err, sizeof(err)), err);
    TT_ASSERT(!memcmp(opened, msg, n));
    TT_ASSERT_EQ_INT(ts_crypt_open_chunk(dk, "obj", 4, sealed, n + 28, opened, err, sizeof(err)),
                     TS_E_CHECKSUM);
    TT_ASSERT_MSG(strstr(err, "chunk 4 of object obj") != NULL, "%s", err);
    TT_ASSERT_EQ_INT(ts_crypt_open_chunk(dk, "obk", 3, sealed, n + 28, opened, err, sizeof(err)),
                     TS_E_CHECKSUM);
    sealed[20] ^= 1;
    TT_ASSERT_EQ_INT(ts_crypt_open_chunk(dk, "obj", 3, sealed, n + 28, opened, err, sizeof(err)),
                     TS_E_CHECKSUM);
    TT_ASSERT_EQ_INT(ts_crypt_open_chunk(dk, "obj", 3, sealed, 10, opened, err, sizeof(err)),
                     TS_E_CORRUPT);
    ts_keyring_destroy(r);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    if (!mkdtemp(g_dir)) return 1;
    TT_RUN(keyring_parses_ids_comments_blanks_and_spaces);
    TT_RUN(keyring_refuses_bad_lines_naming_them);
    TT_RUN(keyring_file_needs_owner_only_mode);
    TT_RUN(base64_round_trips_every_length);
    TT_RUN(wrap_and_seal_round_trip_and_bind_their_context);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd)) { /* best-effort cleanup */ }
    return tt_summary();
}
