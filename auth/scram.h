/*
 * auth/scram.h — SASL credentials shared by tierbroker and tierctl: SCRAM
 * (RFC 5802 / RFC 7677, SHA-256 and SHA-512) derivation and server-side
 * message parsing, PLAIN's message, and the users file
 * (<log.dirs>/.broker/users) both programs read and write.
 *
 * A floor of its own next to common (libc + OpenSSL libcrypto only, no
 * tierstore library), so the broker may link it without the engine and
 * tierctl without the broker. Pure apart from the file functions and the
 * salt's random bytes; the parsers take untrusted bytes and are fuzzed
 * (tests/fuzz/fuzz_sasl.c).
 *
 * Users file, text, one credential a line (a user may have both
 * mechanisms), never a password:
 *
 *   # tierstore users v1
 *   <mechanism> <user, hex of its UTF-8 bytes> <iterations> <salt b64> <StoredKey b64> <ServerKey b64>
 *
 * e.g. "SCRAM-SHA-512 616c696365 8192 q0R...= 3kP...= Zt1...=". Written whole
 * (temp file, fsync, rename, fsync of the directory), mode 0600.
 *
 * Thread: any (no shared state).
 */
#ifndef TS_AUTH_SCRAM_H
#define TS_AUTH_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#define TS_SCRAM_SHA256 1
#define TS_SCRAM_SHA512 2
#define TS_SCRAM_MIN_ITERATIONS 4096
#define TS_SCRAM_MAX_ITERATIONS 1000000
#define TS_SCRAM_MAX_DIGEST 64
#define TS_SCRAM_MAX_SALT 64
#define TS_SCRAM_MAX_NAME 256

/* "SCRAM-SHA-256" / "SCRAM-SHA-512" <-> TS_SCRAM_*; 0 when unknown. */
int ts_scram_mech_parse(const char *name);
const char *ts_scram_mech_name(int mech);
size_t ts_scram_digest_len(int mech);

typedef struct ts_scram_cred {
    int mech;
    int iterations;
    size_t salt_len;
    uint8_t salt[TS_SCRAM_MAX_SALT];
    uint8_t stored_key[TS_SCRAM_MAX_DIGEST];
    uint8_t server_key[TS_SCRAM_MAX_DIGEST];
} ts_scram_cred;

/* Derives the stored credential of a password (salt NULL: 32 random bytes).
 * 0, or -1 with err set (bad mechanism or iterations, crypto failure). */
int ts_scram_cred_make(int mech, const char *password, size_t pwlen, const uint8_t *salt,
                       size_t salt_len, int iterations, ts_scram_cred *out, char *err,
                       size_t errlen);
/* The credential of a SaltedPassword (what AlterUserScramCredentials
 * carries: Hi(password, salt, iterations)); 0 or -1 with err set. */
int ts_scram_cred_from_salted(int mech, const uint8_t *salted, size_t salted_len,
                              const uint8_t *salt, size_t salt_len, int iterations,
                              ts_scram_cred *out, char *err, size_t errlen);
/* 1 when password derives c's StoredKey (PLAIN against a SCRAM credential);
 * the comparison is constant-time. */
int ts_scram_password_matches(const ts_scram_cred *c, const char *password, size_t pwlen);

/* ----------------------------------------------------- server exchange */
/* One SCRAM exchange on the server side:
 *   ts_scram_server_first(client-first) -> the user name to look up;
 *   ts_scram_server_challenge(cred)     -> server-first (to send);
 *   ts_scram_server_final(client-final) -> server-final (to send), or failure. */
typedef struct ts_scram_server {
    int mech;
    char user[TS_SCRAM_MAX_NAME];
    char gs2[64];           /* gs2 header of client-first, for c= */
    char client_first_bare[1024];
    char server_first[1200];
    char nonce[512];        /* client nonce + server nonce */
    ts_scram_cred cred;
} ts_scram_server;

/* Parses client-first ("n,,n=user,r=nonce[,ext...]"); 0 with s->user set,
 * or -1 with err set. Channel binding ("p=") and authzid other than the
 * user are refused. */
int ts_scram_parse_client_first(ts_scram_server *s, int mech, const char *msg, size_t len,
                                char *err, size_t errlen);
/* Writes server-first into s->server_first for cred (the user's, or NULL
 * for an unknown user: a fake credential is used so that the answer does
 * not tell users apart, and the exchange fails at the proof). */
int ts_scram_server_challenge(ts_scram_server *s, const ts_scram_cred *cred, char *err,
                              size_t errlen);
/* Checks client-final ("c=..,r=..,p=.."); 0 with server-final ("v=...")
 * written into out, or -1 with err set. The nonce must end with the
 * exchange's nonce (Kafka's check: librdkafka 2.0 repeats the client part). */
int ts_scram_server_final(ts_scram_server *s, const char *msg, size_t len, char *out,
                          size_t outlen, char *err, size_t errlen);

/* PLAIN (RFC 4616): "[authzid] NUL authcid NUL passwd". 0 with user and
 * password copied (NUL-terminated), or -1 with err set. The authzid must be
 * empty or the user. */
int ts_sasl_plain_parse(const uint8_t *msg, size_t len, char *user, size_t userlen,
                        char *password, size_t pwlen, char *err, size_t errlen);

/* ---------------------------------------------------------- users file */
typedef struct ts_users {
    size_t n, cap;
    struct ts_user_cred {
        char name[TS_SCRAM_MAX_NAME];
        ts_scram_cred cred;
    } *v;
} ts_users;

/* Reads path (a missing file is an empty set). 0, or -1 with err naming the
 * file and line. */
int ts_users_load(ts_users *u, const char *path, char *err, size_t errlen);
/* Writes u whole: temp file, fsync, rename, fsync of the directory; 0600. */
int ts_users_save(const ts_users *u, const char *path, char *err, size_t errlen);
/* The credential of (name, mech), or NULL. */
const ts_scram_cred *ts_users_find(const ts_users *u, const char *name, int mech);
/* Sets (replaces) the credential of (name, cred->mech); 0 or -1 (memory). */
int ts_users_set(ts_users *u, const char *name, const ts_scram_cred *cred);
/* Deletes name's credential for mech (0 = every mechanism); how many went. */
int ts_users_delete(ts_users *u, const char *name, int mech);
void ts_users_free(ts_users *u);

/* Base64 (standard alphabet, padded), as SCRAM uses. encode: out needs
 * 4 * ((n + 2) / 3) + 1 bytes. decode: -1 on bad input or overflow. */
void ts_auth_b64_encode(const uint8_t *in, size_t n, char *out);
int ts_auth_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* ----------------------------------------------------- client exchange */
/* One SCRAM exchange on the client side (scram_client.c; a broker logging in
 * to another):
 *   ts_scram_client_first(user)            -> client-first (to send);
 *   ts_scram_client_final(server-first)    -> client-final (to send);
 *   ts_scram_client_verify(server-final)   -> 0 when the server proved it
 *                                             holds the credential.
 * No channel binding (gs2 header "n,,"), as Kafka. Each returns 0, or -1 with
 * err saying why (an "e=" answer of the server is quoted); the password is
 * never copied into err or into c. */
typedef struct ts_scram_client {
    int mech;
    int final_sent;
    char nonce[64];
    char client_first_bare[TS_SCRAM_MAX_NAME * 3 + 80];
    uint8_t server_signature[TS_SCRAM_MAX_DIGEST];
} ts_scram_client;

int ts_scram_client_first(ts_scram_client *c, int mech, const char *user, char *out,
                          size_t outlen, char *err, size_t errlen);
int ts_scram_client_final(ts_scram_client *c, const char *password, size_t pwlen,
                          const char *server_first, size_t len, char *out, size_t outlen,
                          char *err, size_t errlen);
int ts_scram_client_verify(ts_scram_client *c, const char *server_final, size_t len, char *err,
                           size_t errlen);
/* PLAIN's message "NUL user NUL password" into out; its length, 0 when the
 * user is empty or out too small. */
size_t ts_sasl_plain_make(const char *user, const char *password, uint8_t *out, size_t outlen);

/* The value of attribute `a` ("a=value") at *p within [*p, end) copied to
 * out (bounded), *p moved past the following comma; -1 when absent or too
 * long. The one parser of SCRAM's attribute lists, server and client. */
int ts_scram_attr(const char **p, const char *end, char a, char *out, size_t outlen);

#endif
