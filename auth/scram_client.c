/*
 * scram_client.c — the client side of SCRAM (RFC 5802 / RFC 7677) and
 * PLAIN's message, for a tierbroker that logs in to another one (a
 * follower's fetcher on a SASL inter-broker listener).
 *
 * Kept next to the server side (scram.c) so both ends of the exchange share
 * one module and are tested against each other (tests/broker/test_sasl_client.c);
 * separate from it because only the broker needs it. The server's messages
 * are untrusted: every attribute is read bounded, the iteration count must
 * lie within the server's own bounds (a huge one would be a CPU sink), the
 * server nonce must extend ours, and the server's signature is compared in
 * constant time before the exchange counts as done.
 *
 * Thread: any (the state is the caller's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "scram.h"

static const EVP_MD *md_of(int mech)
{
    return mech == TS_SCRAM_SHA256 ? EVP_sha256() : EVP_sha512();
}

static int hmac_of(int mech, const uint8_t *key, size_t klen, const void *msg, size_t mlen,
                   uint8_t *out)
{
    unsigned int n = 0;
    return HMAC(md_of(mech), key, (int)klen, msg, mlen, out, &n) ? 0 : -1;
}

/* user -> saslname: ',' is "=2C", '=' is "=3D". -1 when out is too small. */
static int sasl_name_encode(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
        size_t l = rep ? 3 : 1;
        if (o + l >= outlen) return -1;
        if (rep)
            memcpy(out + o, rep, 3);
        else
            out[o] = *p;
        o += l;
    }
    out[o] = 0;
    return 0;
}

int ts_scram_client_first(ts_scram_client *c, int mech, const char *user, char *out,
                          size_t outlen, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->mech = mech;
    char name[TS_SCRAM_MAX_NAME * 3];
    uint8_t rnd[24];
    if (!ts_scram_digest_len(mech)) {
        snprintf(err, errlen, "not a SCRAM mechanism");
        return -1;
    }
    if (!*user || strlen(user) >= TS_SCRAM_MAX_NAME || sasl_name_encode(user, name, sizeof name)) {
        snprintf(err, errlen, "user name empty or longer than %d bytes", TS_SCRAM_MAX_NAME - 1);
        return -1;
    }
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        snprintf(err, errlen, "no random bytes for the nonce");
        return -1;
    }
    ts_auth_b64_encode(rnd, sizeof rnd, c->nonce);
    int n = snprintf(c->client_first_bare, sizeof c->client_first_bare, "n=%s,r=%s", name,
                     c->nonce);
    if (n < 0 || (size_t)n >= sizeof c->client_first_bare ||
        (size_t)snprintf(out, outlen, "n,,%s", c->client_first_bare) >= outlen) {
        snprintf(err, errlen, "client-first does not fit");
        return -1;
    }
    return 0;
}


int ts_scram_client_final(ts_scram_client *c, const char *password, size_t pwlen,
                          const char *server_first, size_t len, char *out, size_t outlen,
                          char *err, size_t errlen)
{
    const char *p = server_first, *end = server_first + len;
    char nonce[512], salt64[4 * TS_SCRAM_MAX_SALT / 3 + 8], iter[16];
    uint8_t salt[TS_SCRAM_MAX_SALT];
    size_t salt_len = 0, dl = ts_scram_digest_len(c->mech);
    if (!dl || memchr(server_first, 0, len)) goto malformed;
    if (len >= 2 && server_first[0] == 'e' && server_first[1] == '=') {
        snprintf(err, errlen, "server refused: %.*s", (int)(len > 200 ? 200 : len), server_first);
        return -1;
    }
    if (ts_scram_attr(&p, end, 'r', nonce, sizeof nonce) || ts_scram_attr(&p, end, 's', salt64, sizeof salt64) ||
        ts_scram_attr(&p, end, 'i', iter, sizeof iter))
        goto malformed;
    size_t cl = strlen(c->nonce);
    if (strlen(nonce) <= cl || strncmp(nonce, c->nonce, cl)) {
        snprintf(err, errlen, "server-first: the nonce does not extend the client's");
        return -1;
    }
    char *iend = NULL;
    long it = strtol(iter, &iend, 10);
    if (!*iter || *iend || it < TS_SCRAM_MIN_ITERATIONS || it > TS_SCRAM_MAX_ITERATIONS) {
        snprintf(err, errlen, "server-first: iterations %s outside %d..%d", iter,
                 TS_SCRAM_MIN_ITERATIONS, TS_SCRAM_MAX_ITERATIONS);
        return -1;
    }
    if (ts_auth_b64_decode(salt64, strlen(salt64), salt, sizeof salt, &salt_len) || !salt_len)
        goto malformed;
    /* client-final-without-proof = "c=biws,r=<nonce>" (gs2 "n,," in base64) */
    char without[600], auth[2048];
    int wn = snprintf(without, sizeof without, "c=biws,r=%s", nonce);
    int an = snprintf(auth, sizeof auth, "%s,%.*s,%s", c->client_first_bare, (int)len,
                      server_first, without);
    if (wn < 0 || (size_t)wn >= sizeof without || an < 0 || (size_t)an >= sizeof auth)
        goto malformed;
    uint8_t salted[TS_SCRAM_MAX_DIGEST], ck[TS_SCRAM_MAX_DIGEST], stored[TS_SCRAM_MAX_DIGEST];
    uint8_t sig[TS_SCRAM_MAX_DIGEST], sk[TS_SCRAM_MAX_DIGEST], proof[TS_SCRAM_MAX_DIGEST];
    unsigned int sl = 0;
    int ok = PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, (int)it, md_of(c->mech),
                               (int)dl, salted) == 1 &&
             hmac_of(c->mech, salted, dl, "Client Key", 10, ck) == 0 &&
             EVP_Digest(ck, dl, stored, &sl, md_of(c->mech), NULL) == 1 &&
             hmac_of(c->mech, stored, dl, auth, (size_t)an, sig) == 0 &&
             hmac_of(c->mech, salted, dl, "Server Key", 10, sk) == 0 &&
             hmac_of(c->mech, sk, dl, auth, (size_t)an, c->server_signature) == 0;
    for (size_t i = 0; i < dl; i++) proof[i] = ck[i] ^ sig[i];
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ck, sizeof ck);
    OPENSSL_cleanse(sk, sizeof sk);
    if (!ok) {
        snprintf(err, errlen, "SCRAM key derivation failed");
        return -1;
    }
    char proof64[4 * TS_SCRAM_MAX_DIGEST / 3 + 8];
    ts_auth_b64_encode(proof, dl, proof64);
    if ((size_t)snprintf(out, outlen, "%s,p=%s", without, proof64) >= outlen) goto malformed;
    c->final_sent = 1;
    return 0;
malformed:
    snprintf(err, errlen, "server-first: malformed message");
    return -1;
}

int ts_scram_client_verify(ts_scram_client *c, const char *server_final, size_t len, char *err,
                           size_t errlen)
{
    const char *p = server_final, *end = server_final + len;
    char v64[4 * TS_SCRAM_MAX_DIGEST / 3 + 8];
    uint8_t v[TS_SCRAM_MAX_DIGEST];
    size_t vl = 0, dl = ts_scram_digest_len(c->mech);
    if (!c->final_sent || memchr(server_final, 0, len)) goto malformed;
    if (len >= 2 && server_final[0] == 'e' && server_final[1] == '=') {
        snprintf(err, errlen, "server refused: %.*s", (int)(len > 200 ? 200 : len), server_final);
        return -1;
    }
    if (ts_scram_attr(&p, end, 'v', v64, sizeof v64) ||
        ts_auth_b64_decode(v64, strlen(v64), v, sizeof v, &vl))
        goto malformed;
    if (vl != dl || CRYPTO_memcmp(v, c->server_signature, dl) != 0) {
        snprintf(err, errlen, "server-final: the server's signature is wrong (not the server "
                              "holding this user's credential)");
        return -1;
    }
    OPENSSL_cleanse(c, sizeof *c);
    return 0;
malformed:
    snprintf(err, errlen, "server-final: malformed message");
    return -1;
}

size_t ts_sasl_plain_make(const char *user, const char *password, uint8_t *out, size_t outlen)
{
    size_t ul = strlen(user), pl = strlen(password);
    if (!ul || ul + pl + 2 > outlen) return 0;
    out[0] = 0; /* no authzid */
    memcpy(out + 1, user, ul);
    out[1 + ul] = 0;
    memcpy(out + 2 + ul, password, pl);
    return ul + pl + 2;
}
