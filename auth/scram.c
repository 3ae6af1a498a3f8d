/*
 * auth/scram.c — SCRAM-SHA-256/512 (RFC 5802, RFC 7677) and PLAIN on the
 * server side: key derivation with PKCS5_PBKDF2_HMAC, the client messages'
 * parsers, the proof check (constant-time), base64. The users file is in
 * users.c. Formats and threads: scram.h.
 */
#include "auth/scram.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

int ts_scram_mech_parse(const char *name)
{
    if (!strcmp(name, "SCRAM-SHA-256")) return TS_SCRAM_SHA256;
    if (!strcmp(name, "SCRAM-SHA-512")) return TS_SCRAM_SHA512;
    return 0;
}

const char *ts_scram_mech_name(int mech)
{
    return mech == TS_SCRAM_SHA256 ? "SCRAM-SHA-256" : mech == TS_SCRAM_SHA512 ? "SCRAM-SHA-512" : "?";
}

size_t ts_scram_digest_len(int mech)
{
    return mech == TS_SCRAM_SHA256 ? 32 : mech == TS_SCRAM_SHA512 ? 64 : 0;
}

static const EVP_MD *mech_md(int mech)
{
    return mech == TS_SCRAM_SHA256 ? EVP_sha256() : EVP_sha512();
}

/* HMAC(key, msg) into out (digest length of mech). */
static int hmac(int mech, const uint8_t *key, size_t klen, const void *msg, size_t mlen,
                uint8_t *out)
{
    unsigned int n = 0;
    return HMAC(mech_md(mech), key, (int)klen, msg, mlen, out, &n) ? 0 : -1;
}

static int digest(int mech, const uint8_t *in, size_t n, uint8_t *out)
{
    unsigned int len = 0;
    return EVP_Digest(in, n, out, &len, mech_md(mech), NULL) == 1 ? 0 : -1;
}

/* SaltedPassword -> ClientKey -> StoredKey, ServerKey. */
static int derive(int mech, const char *pw, size_t pwlen, const uint8_t *salt, size_t slen,
                  int iterations, uint8_t *stored, uint8_t *server)
{
    size_t dl = ts_scram_digest_len(mech);
    uint8_t salted[TS_SCRAM_MAX_DIGEST], ck[TS_SCRAM_MAX_DIGEST];
    int rc = PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)slen, iterations, mech_md(mech),
                               (int)dl, salted) == 1 &&
                     hmac(mech, salted, dl, "Client Key", 10, ck) == 0 &&
                     digest(mech, ck, dl, stored) == 0 &&
                     hmac(mech, salted, dl, "Server Key", 10, server) == 0
                 ? 0
                 : -1;
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ck, sizeof ck);
    return rc;
}

int ts_scram_cred_make(int mech, const char *password, size_t pwlen, const uint8_t *salt,
                       size_t salt_len, int iterations, ts_scram_cred *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!ts_scram_digest_len(mech)) {
        snprintf(err, errlen, "unknown SCRAM mechanism");
        return -1;
    }
    if (iterations < TS_SCRAM_MIN_ITERATIONS || iterations > TS_SCRAM_MAX_ITERATIONS) {
        snprintf(err, errlen, "iterations %d outside [%d, %d]", iterations,
                 TS_SCRAM_MIN_ITERATIONS, TS_SCRAM_MAX_ITERATIONS);
        return -1;
    }
    out->mech = mech;
    out->iterations = iterations;
    if (salt) {
        if (salt_len == 0 || salt_len > TS_SCRAM_MAX_SALT) {
            snprintf(err, errlen, "salt of %zu bytes (1 to %d)", salt_len, TS_SCRAM_MAX_SALT);
            return -1;
        }
        memcpy(out->salt, salt, salt_len);
        out->salt_len = salt_len;
    } else {
        out->salt_len = 32;
        if (RAND_bytes(out->salt, 32) != 1) {
            snprintf(err, errlen, "no random bytes for the salt");
            return -1;
        }
    }
    if (derive(mech, password, pwlen, out->salt, out->salt_len, iterations, out->stored_key,
               out->server_key) != 0) {
        snprintf(err, errlen, "key derivation failed");
        return -1;
    }
    return 0;
}

int ts_scram_cred_from_salted(int mech, const uint8_t *salted, size_t salted_len,
                              const uint8_t *salt, size_t salt_len, int iterations,
                              ts_scram_cred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t dl = ts_scram_digest_len(mech);
    uint8_t ck[TS_SCRAM_MAX_DIGEST];
    if (!dl || salted_len != dl || salt_len == 0 || salt_len > TS_SCRAM_MAX_SALT ||
        iterations < TS_SCRAM_MIN_ITERATIONS || iterations > TS_SCRAM_MAX_ITERATIONS) {
        snprintf(err, errlen,
                 "unacceptable credential: salted password of %zu bytes (%zu), salt of %zu bytes "
                 "(1 to %d), iterations %d ([%d, %d])",
                 salted_len, dl, salt_len, TS_SCRAM_MAX_SALT, iterations, TS_SCRAM_MIN_ITERATIONS,
                 TS_SCRAM_MAX_ITERATIONS);
        return -1;
    }
    out->mech = mech;
    out->iterations = iterations;
    out->salt_len = salt_len;
    memcpy(out->salt, salt, salt_len);
    int rc = hmac(mech, salted, dl, "Client Key", 10, ck) == 0 &&
                     digest(mech, ck, dl, out->stored_key) == 0 &&
                     hmac(mech, salted, dl, "Server Key", 10, out->server_key) == 0
                 ? 0
                 : -1;
    OPENSSL_cleanse(ck, sizeof ck);
    if (rc) snprintf(err, errlen, "key derivation failed");
    return rc;
}

int ts_scram_password_matches(const ts_scram_cred *c, const char *password, size_t pwlen)
{
    uint8_t stored[TS_SCRAM_MAX_DIGEST], server[TS_SCRAM_MAX_DIGEST];
    size_t dl = ts_scram_digest_len(c->mech);
    if (!dl || derive(c->mech, password, pwlen, c->salt, c->salt_len, c->iterations, stored,
                      server) != 0)
        return 0;
    return CRYPTO_memcmp(stored, c->stored_key, dl) == 0;
}

/* ------------------------------------------------------------- base64 */

void ts_auth_b64_encode(const uint8_t *in, size_t n, char *out)
{
    int len = n ? EVP_EncodeBlock((unsigned char *)out, in, (int)n) : 0;
    out[len] = 0;
}

int ts_auth_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    if (n % 4 || n / 4 * 3 > cap + 2) return -1;
    uint8_t tmp[4096];
    if (n / 4 * 3 > sizeof tmp) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (c != '=' && i > 0 && in[i - 1] == '=')) return -1;
    }
    int len = n ? EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n) : 0;
    if (len < 0) return -1;
    if (n >= 1 && in[n - 1] == '=') len--;
    if (n >= 2 && in[n - 2] == '=') len--;
    if ((size_t)len > cap) return -1;
    memcpy(out, tmp, (size_t)len);
    *outlen = (size_t)len;
    return 0;
}

/* ------------------------------------------------------------ parsers */

/* The value of attribute `a` ("a=value") at *p within [*p, end): copied to
 * out (bounded), *p moved past the following comma. -1 when absent. Shared
 * with the client side (scram_client.c). */
int ts_scram_attr(const char **p, const char *end, char a, char *out, size_t outlen)
{
    const char *s = *p;
    if (end - s < 2 || s[0] != a || s[1] != '=') return -1;
    s += 2;
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *e = comma ? comma : end;
    if ((size_t)(e - s) >= outlen) return -1;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = 0;
    *p = comma ? comma + 1 : end;
    return 0;
}

/* saslname -> user: "=2C" is ',', "=3D" is '='; any other '=' is an error. */
static int sasl_name_decode(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == '=') {
            if (!strncmp(p, "=2C", 3)) c = ',';
            else if (!strncmp(p, "=3D", 3)) c = '=';
            else return -1;
            p += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = c;
    }
    out[o] = 0;
    return o ? 0 : -1;
}

static int printable_nonce(const char *n)
{
    if (!*n) return 0;
    for (const char *p = n; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == ',') return 0;
    return 1;
}

int ts_scram_parse_client_first(ts_scram_server *s, int mech, const char *msg, size_t len,
                                char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->mech = mech;
    const char *end = msg + len, *p = msg;
    char name[TS_SCRAM_MAX_NAME * 3], authz[TS_SCRAM_MAX_NAME * 3] = "", nonce[256];
    if (memchr(msg, 0, len)) goto fail;
    /* gs2-header: ("n" | "y") "," [ "a=" saslname ] "," */
    if (len < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
        snprintf(err, errlen, "client-first: channel binding is not supported");
        return -1;
    }
    p = msg + 2;
    if (*p == 'a') { /* len >= 3: p is inside msg */
        if (ts_scram_attr(&p, end, 'a', authz, sizeof authz) != 0 || p == end || p[-1] != ',') goto fail;
    } else if (*p == ',') {
        p++;
    } else {
        goto fail;
    }
    if ((size_t)(p - msg) >= sizeof s->gs2) goto fail;
    memcpy(s->gs2, msg, (size_t)(p - msg));
    if ((size_t)(end - p) >= sizeof s->client_first_bare) goto fail;
    memcpy(s->client_first_bare, p, (size_t)(end - p));
    if (ts_scram_attr(&p, end, 'n', name, sizeof name) != 0 || sasl_name_decode(name, s->user, sizeof s->user))
        goto fail;
    if (ts_scram_attr(&p, end, 'r', nonce, sizeof nonce) != 0 || !printable_nonce(nonce)) goto fail;
    if (*authz) {
        char az[TS_SCRAM_MAX_NAME];
        if (sasl_name_decode(authz, az, sizeof az) || strcmp(az, s->user)) {
            snprintf(err, errlen, "client-first: authorization id differs from the user");
            return -1;
        }
    }
    snprintf(s->nonce, sizeof s->nonce, "%s", nonce);
    return 0; /* extensions (Kafka's tokenauth=...) after r= are ignored */
fail:
    snprintf(err, errlen, "client-first: malformed message");
    return -1;
}

int ts_scram_server_challenge(ts_scram_server *s, const ts_scram_cred *cred, char *err,
                              size_t errlen)
{
    uint8_t rnd[24];
    char srv[64], salt[4 * TS_SCRAM_MAX_SALT / 3 + 8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        snprintf(err, errlen, "no random bytes for the nonce");
        return -1;
    }
    ts_auth_b64_encode(rnd, sizeof rnd, srv);
    if (cred) {
        s->cred = *cred;
    } else { /* unknown user: a credential nobody can prove */
        s->cred.mech = s->mech;
        s->cred.iterations = TS_SCRAM_MIN_ITERATIONS;
        s->cred.salt_len = 32;
        if (RAND_bytes(s->cred.salt, 32) != 1 ||
            RAND_bytes(s->cred.stored_key, TS_SCRAM_MAX_DIGEST) != 1 ||
            RAND_bytes(s->cred.server_key, TS_SCRAM_MAX_DIGEST) != 1) {
            snprintf(err, errlen, "no random bytes");
            return -1;
        }
    }
    size_t cl = strlen(s->nonce);
    if (cl + strlen(srv) >= sizeof s->nonce) {
        snprintf(err, errlen, "client nonce too long");
        return -1;
    }
    memcpy(s->nonce + cl, srv, strlen(srv) + 1);
    ts_auth_b64_encode(s->cred.salt, s->cred.salt_len, salt);
    snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%d", s->nonce, salt,
             s->cred.iterations);
    return 0;
}

/* ClientProof -> ClientKey; H(ClientKey) must be StoredKey. */
static int proof_valid(const ts_scram_server *s, const char *auth, size_t alen,
                       const uint8_t *proof, size_t plen)
{
    size_t dl = ts_scram_digest_len(s->mech);
    uint8_t sig[TS_SCRAM_MAX_DIGEST], ck[TS_SCRAM_MAX_DIGEST], stored[TS_SCRAM_MAX_DIGEST];
    if (plen != dl || hmac(s->mech, s->cred.stored_key, dl, auth, alen, sig) != 0) return 0;
    for (size_t i = 0; i < dl; i++) ck[i] = proof[i] ^ sig[i];
    int ok = digest(s->mech, ck, dl, stored) == 0 && CRYPTO_memcmp(stored, s->cred.stored_key, dl) == 0;
    OPENSSL_cleanse(ck, sizeof ck);
    return ok;
}

/* c= must be the base64 of the gs2 header sent in client-first. */
static int binding_valid(const ts_scram_server *s, const char *c)
{
    char want[96];
    ts_auth_b64_encode((const uint8_t *)s->gs2, strlen(s->gs2), want);
    return !strcmp(c, want);
}

static int nonce_valid(const ts_scram_server *s, const char *r)
{
    size_t rl = strlen(r), nl = strlen(s->nonce);
    return rl >= nl && !strcmp(r + rl - nl, s->nonce);
}

int ts_scram_server_final(ts_scram_server *s, const char *msg, size_t len, char *out,
                          size_t outlen, char *err, size_t errlen)
{
    const char *end = msg + len, *p = msg;
    char cb[128], nonce[1024], proof64[128];
    if (memchr(msg, 0, len) || ts_scram_attr(&p, end, 'c', cb, sizeof cb) != 0 ||
        ts_scram_attr(&p, end, 'r', nonce, sizeof nonce) != 0) {
        snprintf(err, errlen, "client-final: malformed message");
        return -1;
    }
    /* p= is last: extensions may sit between r= and it */
    const char *pp = NULL;
    for (const char *q = p; q + 2 <= end; q++)
        if ((q == msg || q[-1] == ',') && q[0] == 'p' && q[1] == '=') pp = q;
    const char *without_proof_end = pp ? pp - 1 : NULL;
    if (!pp || ts_scram_attr(&pp, end, 'p', proof64, sizeof proof64) != 0 || pp != end) {
        snprintf(err, errlen, "client-final: no proof");
        return -1;
    }
    if (!binding_valid(s, cb)) {
        snprintf(err, errlen, "client-final: channel binding differs from client-first");
        return -1;
    }
    if (!nonce_valid(s, nonce)) {
        snprintf(err, errlen, "client-final: nonce does not end with the server's");
        return -1;
    }
    uint8_t proof[TS_SCRAM_MAX_DIGEST];
    size_t plen = 0;
    char auth[4096];
    int an = snprintf(auth, sizeof auth, "%s,%s,%.*s", s->client_first_bare, s->server_first,
                      (int)(without_proof_end - msg), msg);
    if (an < 0 || (size_t)an >= sizeof auth ||
        ts_auth_b64_decode(proof64, strlen(proof64), proof, sizeof proof, &plen) != 0 ||
        !proof_valid(s, auth, (size_t)an, proof, plen)) {
        snprintf(err, errlen, "invalid credentials");
        return -1;
    }
    uint8_t ssig[TS_SCRAM_MAX_DIGEST];
    char sig64[4 * TS_SCRAM_MAX_DIGEST / 3 + 8];
    size_t dl = ts_scram_digest_len(s->mech);
    if (hmac(s->mech, s->cred.server_key, dl, auth, (size_t)an, ssig) != 0) {
        snprintf(err, errlen, "HMAC failed");
        return -1;
    }
    ts_auth_b64_encode(ssig, dl, sig64);
    snprintf(out, outlen, "v=%s", sig64);
    return 0;
}

int ts_sasl_plain_parse(const uint8_t *msg, size_t len, char *user, size_t userlen,
                        char *password, size_t pwlen, char *err, size_t errlen)
{
    const uint8_t *z1 = memchr(msg, 0, len);
    const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, len - (size_t)(z1 + 1 - msg)) : NULL;
    size_t azl = z1 ? (size_t)(z1 - msg) : 0;
    size_t ul = z2 ? (size_t)(z2 - z1 - 1) : 0;
    size_t pl = z2 ? len - (size_t)(z2 + 1 - msg) : 0;
    if (!z2 || ul == 0 || ul >= userlen || pl == 0 || pl >= pwlen || memchr(z2 + 1, 0, pl)) {
        snprintf(err, errlen, "PLAIN: malformed message");
        return -1;
    }
    memcpy(user, z1 + 1, ul);
    user[ul] = 0;
    if (azl && (azl != ul || memcmp(msg, user, ul))) {
        snprintf(err, errlen, "PLAIN: authorization id differs from the user");
        return -1;
    }
    memcpy(password, z2 + 1, pl);
    password[pl] = 0;
    return 0;
}
