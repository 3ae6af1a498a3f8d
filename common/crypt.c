/*
 * crypt.c — key ring, data keys, AES-256-GCM key wrap and chunk sealing
 * (crypt.h has the formats and why they are shaped so).
 *
 * One EVP helper does every GCM operation (seal or open, any AAD), so the
 * wrap and the chunk paths cannot drift apart. The ring parser reads
 * untrusted text through bounded slices with one failure exit per line;
 * key bytes are wiped (OPENSSL_cleanse) when the ring goes.
 */
#include "common/crypt.h"
#include "tierstore_names.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/err.h"
#include "common/fsutil.h"

#define RING_FILE_MAX (1u << 20)

typedef struct ring_key {
    char id[TS_CRYPT_KEY_ID_MAX + 1];
    uint8_t key[TS_CRYPT_KEY_LEN];
} ring_key;

struct ts_keyring {
    char name[512];
    ring_key *keys;
    size_t n;
};

/* ------------------------------------------------------------ base64 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void ts_b64_encode(const uint8_t *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

int ts_b64_decode_exact(const char *in, size_t len, uint8_t *out, size_t want)
{
    if (len == 0 || len % 4 || len / 4 * 3 > want + 2) return -1;
    size_t pad = in[len - 1] == '=' ? (in[len - 2] == '=' ? 2 : 1) : 0;
    if (len / 4 * 3 - pad != want) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            int last = i + 4 == len;
            v[k] = last && k >= 4 - (int)pad ? 0 : b64_val(in[i + (size_t)k]);
            if (v[k] < 0) return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        for (int k = 0; k < 3 && o < want; k++) out[o++] = b[k];
        if (i + 4 == len && pad && (w & (pad == 2 ? 0xffffu : 0xffu))) return -1; /* non-canonical */
    }
    return o == want ? 0 : -1;
}

/* ------------------------------------------------------------ key ring */

/* Key ids follow the topic-name rule (the same characters, so they are
 * safe in JSON, logs and file names), at most 32 characters. */
int ts_crypt_key_id_valid(const char *id)
{
    return strnlen(id, TS_CRYPT_KEY_ID_MAX + 1) <= TS_CRYPT_KEY_ID_MAX && ts_topic_name_valid(id);
}

static const char *trim(const char *s, const char *e, const char **end)
{
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    *end = e;
    return s;
}

/* Parses one non-blank, non-comment line [s, e) into k. 0 or a reason. */
static const char *parse_line(const char *s, const char *e, ring_key *k)
{
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq) return "is not id=base64(key)";
    const char *ie, *is = trim(s, eq, &ie);
    const char *ve, *vs = trim(eq + 1, e, &ve);
    if ((size_t)(ie - is) > TS_CRYPT_KEY_ID_MAX || ie == is)
        return "has a key id that is empty or longer than 32 characters";
    memcpy(k->id, is, (size_t)(ie - is));
    k->id[ie - is] = '\0';
    if (!ts_crypt_key_id_valid(k->id)) return "has a key id outside [A-Za-z0-9._-] (or . or ..)";
    if (ts_b64_decode_exact(vs, (size_t)(ve - vs), k->key, TS_CRYPT_KEY_LEN))
        return "has a key that is not the base64 of exactly 32 bytes (AES-256)";
    return NULL;
}

ts_status ts_keyring_parse(const char *text, size_t len, const char *name, ts_keyring **out,
                           char *errstr, size_t errlen)
{
    *out = NULL;
    ts_keyring *r = calloc(1, sizeof(*r));
    if (!r) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "(key ring)");
    const char *p = text, *end = text + len, *why = NULL;
    size_t line = 0, cap = 0;
    ring_key k;
    while (p < end && !why) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *te, *ts = trim(p, le, &te);
        line++;
        p = nl ? nl + 1 : end;
        if (ts == te || *ts == '#') continue;
        if (memchr(ts, '\0', (size_t)(te - ts))) why = "holds a NUL byte";
        else if (!(why = parse_line(ts, te, &k)) && ts_keyring_find(r, k.id))
            why = "repeats a key id";
        else if (!why && r->n == TS_CRYPT_RING_MAX_KEYS) why = "is past the 4096 keys a ring holds";
        if (why) break;
        if (r->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            ring_key *nk = realloc(r->keys, nc * sizeof(*nk));
            if (!nk) {
                why = "cannot be held (out of memory)";
                break;
            }
            r->keys = nk;
            cap = nc;
        }
        r->keys[r->n++] = k;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    ts_status st = TS_OK;
    if (why)
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "key ring %s: line %zu %s", r->name, line,
                        why);
    else if (r->n == 0)
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "key ring %s holds no key", r->name);
    if (st) {
        ts_keyring_destroy(r);
        return st;
    }
    *out = r;
    return TS_OK;
}

ts_status ts_keyring_load(const char *path, ts_keyring **out, char *errstr, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "cannot open key ring %s: %s", path,
                          strerror(errno));
    struct stat sb;
    ts_status st = TS_OK;
    char *buf = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "key ring %s is not a regular file", path);
    } else if (sb.st_uid != geteuid()) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG,
                        "key ring %s is owned by uid %u, not by this process's user (uid %u): "
                        "refusing to use it (chown it)",
                        path, (unsigned)sb.st_uid, (unsigned)geteuid());
    } else if (sb.st_mode & 077) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG,
                        "key ring %s has mode %04o: group or others may access it; refusing to "
                        "use it (chmod 600 %s)",
                        path, (unsigned)(sb.st_mode & 07777), path);
    } else if (sb.st_size > RING_FILE_MAX) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "key ring %s is larger than 1 MiB", path);
    } else if (!(buf = malloc((size_t)sb.st_size + 1))) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory reading key ring %s", path);
    } else if (ts_fs_read_full(fd, buf, (size_t)sb.st_size, 0) != (ssize_t)sb.st_size) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "cannot read key ring %s", path);
    } else {
        st = ts_keyring_parse(buf, (size_t)sb.st_size, path, out, errstr, errlen);
    }
    if (buf) {
        OPENSSL_cleanse(buf, (size_t)sb.st_size);
        free(buf);
    }
    close(fd);
    return st;
}

void ts_keyring_destroy(ts_keyring *r)
{
    if (!r) return;
    if (r->keys) OPENSSL_cleanse(r->keys, r->n * sizeof(*r->keys));
    free(r->keys);
    free(r);
}

const uint8_t *ts_keyring_find(const ts_keyring *r, const char *id)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (!strcmp(r->keys[i].id, id)) return r->keys[i].key;
    return NULL;
}

size_t ts_keyring_count(const ts_keyring *r) { return r ? r->n : 0; }
const char *ts_keyring_name(const ts_keyring *r) { return r ? r->name : "(no key ring)"; }

/* ------------------------------------------------------------ AES-256-GCM */

/* One GCM operation: enc != 0 seals in -> out and writes tag; enc == 0
 * opens and checks tag. 0 on success, -1 on any failure (a tag mismatch
 * included). */
static int gcm(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
               size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int ok = x != NULL && len <= INT32_MAX;
    int n = 0;
    ok = ok && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, TS_CRYPT_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(x, NULL, NULL, key, nonce, enc) == 1;
    ok = ok && EVP_CipherUpdate(x, NULL, &n, aad, (int)aadlen) == 1;
    ok = ok && (len == 0 || EVP_CipherUpdate(x, out, &n, in, (int)len) == 1);
    if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TS_CRYPT_TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(x, out + len, &n) == 1;
    if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TS_CRYPT_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(x);
    return ok ? 0 : -1;
}

static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    ts_wr32(p, (uint32_t)n);
    memcpy(p + 4, s, n);
    return 4 + n;
}

/* AAD of a wrapped key: "TSK1" | kek id | object key (length-framed). */
static size_t wrap_aad(uint8_t *a, const char *kek_id, const char *object_key)
{
    memcpy(a, "TSK1", 4);
    size_t n = 4 + put_str(a + 4, kek_id);
    return n + put_str(a + n, object_key);
}

/* AAD of a chunk: "TSE1" | object key (length-framed) | chunk index. */
static size_t chunk_aad(uint8_t *a, const char *object_key, uint32_t idx)
{
    memcpy(a, "TSE1", 4);
    size_t n = 4 + put_str(a + 4, object_key);
    ts_wr32(a + n, idx);
    return n + 4;
}

#define AAD_MAX (4 + 4 + TS_CRYPT_KEY_ID_MAX + 4 + 1024 + 4)

ts_status ts_crypt_new_data_key(uint8_t key[TS_CRYPT_KEY_LEN], char *errstr, size_t errlen)
{
    if (RAND_bytes(key, TS_CRYPT_KEY_LEN) != 1)
        return ts_err_set(errstr, errlen, TS_E_IO, "the random number generator failed");
    return TS_OK;
}

static ts_status kek_of(const ts_keyring *ring, const char *kek_id, const char *object_key,
                        const uint8_t **kek, char *errstr, size_t errlen)
{
    if (!ts_crypt_key_id_valid(kek_id) || strlen(object_key) > 1024)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "object %s: invalid key id or key for its data key", object_key);
    if (!(*kek = ts_keyring_find(ring, kek_id)))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "key '%s' (the key-encryption key of object %s) is not in the key "
                          "ring %s: add it back; a key may leave the ring only after "
                          "`tierctl rekey` moved its objects to the active key",
                          kek_id, object_key, ts_keyring_name(ring));
    return TS_OK;
}

ts_status ts_crypt_wrap(const ts_keyring *ring, const char *kek_id, const char *object_key,
                        const uint8_t key[TS_CRYPT_KEY_LEN], uint8_t wrapped[TS_CRYPT_WRAPPED_LEN],
                        char *errstr, size_t errlen)
{
    const uint8_t *kek;
    ts_status st = kek_of(ring, kek_id, object_key, &kek, errstr, errlen);
    if (st) return st;
    uint8_t aad[AAD_MAX];
    size_t alen = wrap_aad(aad, kek_id, object_key);
    if (RAND_bytes(wrapped, TS_CRYPT_NONCE_LEN) != 1 ||
        gcm(1, kek, wrapped, aad, alen, key, TS_CRYPT_KEY_LEN, wrapped + TS_CRYPT_NONCE_LEN,
            wrapped + TS_CRYPT_NONCE_LEN + TS_CRYPT_KEY_LEN))
        return ts_err_set(errstr, errlen, TS_E_IO, "object %s: cannot wrap its data key",
                          object_key);
    return TS_OK;
}

ts_status ts_crypt_unwrap(const ts_keyring *ring, const char *kek_id, const char *object_key,
                          const uint8_t wrapped[TS_CRYPT_WRAPPED_LEN],
                          uint8_t key[TS_CRYPT_KEY_LEN], char *errstr, size_t errlen)
{
    const uint8_t *kek;
    ts_status st = kek_of(ring, kek_id, object_key, &kek, errstr, errlen);
    if (st) return st;
    uint8_t aad[AAD_MAX], tag[TS_CRYPT_TAG_LEN];
    size_t alen = wrap_aad(aad, kek_id, object_key);
    memcpy(tag, wrapped + TS_CRYPT_NONCE_LEN + TS_CRYPT_KEY_LEN, TS_CRYPT_TAG_LEN);
    if (gcm(0, kek, wrapped, aad, alen, wrapped + TS_CRYPT_NONCE_LEN, TS_CRYPT_KEY_LEN, key, tag)) {
        OPENSSL_cleanse(key, TS_CRYPT_KEY_LEN);
        return ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                          "object %s: its wrapped data key fails authentication under key '%s' "
                          "(altered, or wrapped for another object or key)",
                          object_key, kek_id);
    }
    return TS_OK;
}

ts_status ts_crypt_seal_chunk(const uint8_t key[TS_CRYPT_KEY_LEN], const char *object_key,
                              uint32_t idx, const uint8_t *in, size_t len, uint8_t *out,
                              char *errstr, size_t errlen)
{
    uint8_t aad[AAD_MAX];
    if (strlen(object_key) > 1024)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "object key too long");
    size_t alen = chunk_aad(aad, object_key, idx);
    if (RAND_bytes(out, TS_CRYPT_NONCE_LEN) != 1 ||
        gcm(1, key, out, aad, alen, in, len, out + TS_CRYPT_NONCE_LEN,
            out + TS_CRYPT_NONCE_LEN + len))
        return ts_err_set(errstr, errlen, TS_E_IO, "chunk %u of object %s: cannot seal it", idx,
                          object_key);
    return TS_OK;
}

ts_status ts_crypt_open_chunk(const uint8_t key[TS_CRYPT_KEY_LEN], const char *object_key,
                              uint32_t idx, const uint8_t *in, size_t len, uint8_t *out,
                              char *errstr, size_t errlen)
{
    uint8_t aad[AAD_MAX], tag[TS_CRYPT_TAG_LEN];
    if (len < TS_CRYPT_CHUNK_OVERHEAD || strlen(object_key) > 1024)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "chunk %u of object %s is too short to be sealed (%zu bytes)", idx,
                          object_key, len);
    size_t plen = len - TS_CRYPT_CHUNK_OVERHEAD;
    size_t alen = chunk_aad(aad, object_key, idx);
    memcpy(tag, in + TS_CRYPT_NONCE_LEN + plen, TS_CRYPT_TAG_LEN);
    if (gcm(0, key, in, aad, alen, in + TS_CRYPT_NONCE_LEN, plen, out, tag))
        return ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                          "chunk %u of object %s fails its AES-256-GCM authentication tag (the "
                          "stored bytes were altered or belong elsewhere); not served",
                          idx, object_key);
    return TS_OK;
}
