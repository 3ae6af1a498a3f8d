/*
 * crypt.h — encryption at rest of segment objects: the key ring, data keys
 * and AES-256-GCM sealing of chunks (OpenSSL EVP), envelope style.
 *
 * Every object gets its own random 256-bit data key. The data key is stored
 * only wrapped (AES-256-GCM under a key-encryption key, "KEK", from the key
 * ring), next to the id of that KEK, in the object's manifest entry; a
 * wrapped key is no secret. Each chunk is sealed on its own after
 * compression, so a ranged read still fetches only the chunks it needs.
 * Byte layouts (all fixed here, documented once):
 *
 *   wrapped data key, TS_CRYPT_WRAPPED_LEN = 60 bytes:
 *     nonce[12] | AES-256-GCM(KEK, data key)[32] | tag[16]
 *     AAD = "TSK1" | u32be len(key id) | key id | u32be len(object key) | object key
 *   sealed chunk, plain length + TS_CRYPT_CHUNK_OVERHEAD (28) bytes:
 *     nonce[12] | AES-256-GCM(data key, zstd frame) | tag[16]
 *     AAD = "TSE1" | u32be len(object key) | object key | u32be chunk index
 *
 * Nonces are random (RAND_bytes). The AADs bind a wrapped key to its KEK id
 * and object, and a chunk to its object and position: a wrapped key or a
 * chunk moved to another object or index fails its tag.
 *
 * Key ring file: one `id=base64(32 bytes)` per line; blank lines and lines
 * starting with '#' are ignored; ids are 1..TS_CRYPT_KEY_ID_MAX characters
 * of [A-Za-z0-9._-], not "." or "..", and unique. The file must be owned by the process's
 * user and not readable or writable by group or others (mode 0600 or
 * stricter), else it is refused before it is read.
 *
 * Thread safety: a loaded ring is immutable; every function may be called
 * from any thread.
 */
#ifndef TS_COMMON_CRYPT_H
#define TS_COMMON_CRYPT_H

#include <stddef.h>
#include <stdint.h>
#include "tierstore.h"

#define TS_CRYPT_KEY_LEN 32
#define TS_CRYPT_KEY_ID_MAX 32
#define TS_CRYPT_NONCE_LEN 12
#define TS_CRYPT_TAG_LEN 16
#define TS_CRYPT_WRAPPED_LEN (TS_CRYPT_NONCE_LEN + TS_CRYPT_KEY_LEN + TS_CRYPT_TAG_LEN)
#define TS_CRYPT_CHUNK_OVERHEAD (TS_CRYPT_NONCE_LEN + TS_CRYPT_TAG_LEN)
#define TS_CRYPT_RING_MAX_KEYS 4096

typedef struct ts_keyring ts_keyring;

/* Parses key ring text (untrusted: the fuzz target feeds it). `name`
 * names the source in messages. TS_E_CONFIG naming the line on any defect
 * (bad id, bad base64, a key that is not 32 bytes, a duplicate id). */
ts_status ts_keyring_parse(const char *text, size_t len, const char *name, ts_keyring **out,
                           char *errstr, size_t errlen);
/* Checks the file's owner and mode (see above), then reads and parses it.
 * TS_E_CONFIG naming the file when it is refused. */
ts_status ts_keyring_load(const char *path, ts_keyring **out, char *errstr, size_t errlen);
/* Wipes the keys. NULL-safe. */
void ts_keyring_destroy(ts_keyring *ring);
/* The KEK with this id, or NULL. */
const uint8_t *ts_keyring_find(const ts_keyring *ring, const char *id);
size_t ts_keyring_count(const ts_keyring *ring);
/* The source the ring was loaded from (for messages). */
const char *ts_keyring_name(const ts_keyring *ring);

/* A new random data key. TS_E_IO when the RNG fails. */
ts_status ts_crypt_new_data_key(uint8_t key[TS_CRYPT_KEY_LEN], char *errstr, size_t errlen);

/* Wraps a data key for object_key under the ring's KEK kek_id.
 * TS_E_CONFIG when the ring has no such key. */
ts_status ts_crypt_wrap(const ts_keyring *ring, const char *kek_id, const char *object_key,
                        const uint8_t key[TS_CRYPT_KEY_LEN], uint8_t wrapped[TS_CRYPT_WRAPPED_LEN],
                        char *errstr, size_t errlen);
/* Unwraps; TS_E_CONFIG naming the id when the ring lacks the KEK,
 * TS_E_CHECKSUM when the tag does not match (altered, or another object's). */
ts_status ts_crypt_unwrap(const ts_keyring *ring, const char *kek_id, const char *object_key,
                          const uint8_t wrapped[TS_CRYPT_WRAPPED_LEN],
                          uint8_t key[TS_CRYPT_KEY_LEN], char *errstr, size_t errlen);

/* Seals len bytes of chunk idx of object_key into out (len +
 * TS_CRYPT_CHUNK_OVERHEAD bytes). */
ts_status ts_crypt_seal_chunk(const uint8_t key[TS_CRYPT_KEY_LEN], const char *object_key,
                              uint32_t idx, const uint8_t *in, size_t len, uint8_t *out,
                              char *errstr, size_t errlen);
/* Opens a sealed chunk of len bytes into out (len - overhead bytes; out
 * may be in + TS_CRYPT_NONCE_LEN: in place, over the ciphertext).
 * TS_E_CHECKSUM naming the object and chunk when the tag does not match;
 * nothing in out may then be used. */
ts_status ts_crypt_open_chunk(const uint8_t key[TS_CRYPT_KEY_LEN], const char *object_key,
                              uint32_t idx, const uint8_t *in, size_t len, uint8_t *out,
                              char *errstr, size_t errlen);

/* Standard base64 with padding. encode writes 4*ceil(len/3) chars + NUL
 * (out needs TS_B64_LEN(len) bytes). decode is strict (length a multiple
 * of 4, only the alphabet, padding only at the end) and fails (-1) unless
 * the result is exactly want bytes. */
#define TS_B64_LEN(n) (4 * (((n) + 2) / 3) + 1)
void ts_b64_encode(const uint8_t *in, size_t len, char *out);
int ts_b64_decode_exact(const char *in, size_t len, uint8_t *out, size_t want);

/* Whether id is a valid key id (also used for manifest entries). */
int ts_crypt_key_id_valid(const char *id);

#endif
