/*
 * test_sasl_client.c — the broker's SASL client side (a follower logging in
 * to its leader) against the server side it talks to:
 *   - SCRAM-SHA-256/512: auth/scram_client.c's exchange against auth/scram.c's
 *     server (the code sasl.c runs), for a credential made as `tierctl users
 *     add` makes it; a wrong password and an unknown user fail at the proof;
 *     a server that does not hold the credential (wrong ServerKey) fails the
 *     client's check; a server-first that does not extend the client nonce,
 *     has an iteration count outside 4096..1000000 or is malformed is
 *     refused; "e=" answers are quoted; user names with ',' and '='
 *     round-trip through saslname escaping.
 *   - PLAIN: the client's message parsed by the server's parser.
 *   - the Kafka frames: SaslHandshake v1 and SaslAuthenticate v2 requests
 *     parse back through the broker's own request parser (kafka_parse.c);
 *     the answers, laid out as Kafka's schemas (and sasl.c) write them, parse
 *     into their fields, and every truncation is refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/scram.h"
#include "broker/kafka_client.h"
#include "broker/kafka_proto.h"
#include "tests/tt.h"

/* One full exchange; 0 when both sides accept. stage: where it failed
 * (1 client-first, 2 server-first parse, 3 challenge, 4 client-final,
 * 5 server-final, 6 client verify). */
static int exchange(int mech, const char *user, const ts_scram_cred *cred, const char *password,
                    int tamper_server_key, int *stage, char *err, size_t errlen)
{
    ts_scram_client c;
    ts_scram_server s;
    char m1[1024], m3[1024], m4[256];
    *stage = 1;
    if (ts_scram_client_first(&c, mech, user, m1, sizeof m1, err, errlen)) return -1;
    *stage = 2;
    if (ts_scram_parse_client_first(&s, mech, m1, strlen(m1), err, errlen)) return -1;
    if (strcmp(s.user, user)) {
        snprintf(err, errlen, "server read user '%s'", s.user);
        return -1;
    }
    ts_scram_cred cc;
    if (cred) {
        cc = *cred;
        if (tamper_server_key) cc.server_key[0] ^= 1;
    }
    *stage = 3;
    if (ts_scram_server_challenge(&s, cred ? &cc : NULL, err, errlen)) return -1;
    *stage = 4;
    if (ts_scram_client_final(&c, password, strlen(password), s.server_first,
                              strlen(s.server_first), m3, sizeof m3, err, errlen))
        return -1;
    if (strstr(m3, password)) {
        snprintf(err, errlen, "client-final holds the password");
        return -1;
    }
    *stage = 5;
    if (ts_scram_server_final(&s, m3, strlen(m3), m4, sizeof m4, err, errlen)) return -1;
    *stage = 6;
    return ts_scram_client_verify(&c, m4, strlen(m4), err, errlen);
}

TT_TEST(scram_against_server)
{
    const char *users[] = {"broker", "odd,name=x"};
    for (int mech = TS_SCRAM_SHA256; mech <= TS_SCRAM_SHA512; mech++)
        for (size_t u = 0; u < 2; u++) {
            ts_scram_cred cred;
            char err[256] = "";
            TT_ASSERT_EQ_INT(ts_scram_cred_make(mech, "s3cret", 6, NULL, 0, 4096, &cred, err,
                                                sizeof err),
                             0);
            int stage = 0;
            int rc = exchange(mech, users[u], &cred, "s3cret", 0, &stage, err, sizeof err);
            TT_ASSERT_MSG(rc == 0, "%s user %s: stage %d: %s", ts_scram_mech_name(mech), users[u],
                          stage, err);
            /* wrong password: the server refuses the proof */
            rc = exchange(mech, users[u], &cred, "s3cred", 0, &stage, err, sizeof err);
            TT_ASSERT(rc != 0);
            TT_ASSERT_EQ_INT(stage, 5);
            TT_ASSERT_STR(err, "invalid credentials");
            /* a server whose ServerKey differs: the client refuses it */
            rc = exchange(mech, users[u], &cred, "s3cret", 1, &stage, err, sizeof err);
            TT_ASSERT(rc != 0);
            TT_ASSERT_EQ_INT(stage, 6);
            TT_ASSERT(strstr(err, "signature") != NULL);
        }
    /* unknown user: a fake challenge, refused at the proof */
    int stage = 0;
    char err[256];
    TT_ASSERT(exchange(TS_SCRAM_SHA512, "nobody", NULL, "nobody-password", 0, &stage, err, sizeof err) != 0);
    TT_ASSERT_MSG(stage == 5, "stage %d: %s", stage, err);
}

/* The client's answer to a hand-written server-first. */
static int client_final_of(const char *server_first, char *err, size_t errlen)
{
    ts_scram_client c;
    char m1[512], m3[1024];
    if (ts_scram_client_first(&c, TS_SCRAM_SHA256, "u", m1, sizeof m1, err, errlen)) return -2;
    char sf[1024];
    /* "%N" stands for the client's nonce */
    const char *at = strstr(server_first, "%N");
    if (at)
        snprintf(sf, sizeof sf, "%.*s%s%s", (int)(at - server_first), server_first, c.nonce,
                 at + 2);
    else
        snprintf(sf, sizeof sf, "%s", server_first);
    return ts_scram_client_final(&c, "pw", 2, sf, strlen(sf), m3, sizeof m3, err, errlen);
}

TT_TEST(scram_client_refuses_bad_server_first)
{
    char err[256];
    TT_ASSERT_EQ_INT(client_final_of("r=%Nsrv,s=c2FsdHNhbHQ=,i=4096", err, sizeof err), 0);
    TT_ASSERT(client_final_of("r=othernonce,s=c2FsdHNhbHQ=,i=4096", err, sizeof err) == -1);
    TT_ASSERT(strstr(err, "nonce") != NULL);
    TT_ASSERT(client_final_of("r=%N,s=c2FsdHNhbHQ=,i=4096", err, sizeof err) == -1); /* no server part */
    TT_ASSERT(client_final_of("r=%Nsrv,s=c2FsdHNhbHQ=,i=1", err, sizeof err) == -1);
    TT_ASSERT(strstr(err, "iterations") != NULL);
    TT_ASSERT(client_final_of("r=%Nsrv,s=c2FsdHNhbHQ=,i=999999999", err, sizeof err) == -1);
    TT_ASSERT(client_final_of("r=%Nsrv,s=c2FsdHNhbHQ=,i=4096x", err, sizeof err) == -1);
    TT_ASSERT(client_final_of("r=%Nsrv,s=!!!,i=4096", err, sizeof err) == -1);
    TT_ASSERT(client_final_of("r=%Nsrv,i=4096", err, sizeof err) == -1);
    TT_ASSERT(client_final_of("", err, sizeof err) == -1);
    TT_ASSERT(client_final_of("e=unknown-user", err, sizeof err) == -1);
    TT_ASSERT(strstr(err, "e=unknown-user") != NULL);
    /* server-final: malformed, e=, or before client-final */
    ts_scram_client c;
    char m1[512];
    TT_ASSERT_EQ_INT(ts_scram_client_first(&c, TS_SCRAM_SHA512, "u", m1, sizeof m1, err, sizeof err), 0);
    TT_ASSERT(ts_scram_client_verify(&c, "v=AAAA", 6, err, sizeof err) == -1);
    TT_ASSERT(ts_scram_client_first(&c, 7, "u", m1, sizeof m1, err, sizeof err) == -1);
    TT_ASSERT(ts_scram_client_first(&c, TS_SCRAM_SHA256, "", m1, sizeof m1, err, sizeof err) == -1);
}

TT_TEST(plain_against_server)
{
    uint8_t tok[128];
    size_t n = ts_sasl_plain_make("broker-2", "pw with spaces", tok, sizeof tok);
    TT_ASSERT_EQ_INT(n, 1 + 8 + 1 + 14);
    char user[64], pw[64], err[128];
    TT_ASSERT_EQ_INT(ts_sasl_plain_parse(tok, n, user, sizeof user, pw, sizeof pw, err, sizeof err), 0);
    TT_ASSERT_STR(user, "broker-2");
    TT_ASSERT_STR(pw, "pw with spaces");
    TT_ASSERT_EQ_INT(ts_sasl_plain_make("", "x", tok, sizeof tok), 0);
    TT_ASSERT_EQ_INT(ts_sasl_plain_make("u", "12345678", tok, 8), 0); /* does not fit */
}

static kafka_parse_result parse_frame(const kw *w, karena *a, kafka_request *q)
{
    char err[256];
    return kafka_parse_request(w->d + 4, w->len - 4, a, q, err, sizeof err);
}

TT_TEST(sasl_requests_parse_on_the_server)
{
    kw w;
    karena a;
    kafka_request q;
    kw_init(&w, 1 << 16);
    karena_init(&a, 1 << 20);
    kafka_write_SaslHandshakeRequest(&w, 5, "tierbroker-2-fetcher-1", "SCRAM-SHA-512");
    TT_ASSERT(!w.err);
    TT_ASSERT_EQ_INT(parse_frame(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.hdr.api_key, KAFKA_API_SaslHandshake);
    TT_ASSERT_EQ_INT(q.hdr.api_version, 1);
    TT_ASSERT_EQ_INT(q.hdr.correlation_id, 5);
    TT_ASSERT_STR(q.u.sasl_handshake.mechanism, "SCRAM-SHA-512");
    kw_free(&w);
    karena_free(&a);

    kw_init(&w, 1 << 16);
    karena_init(&a, 1 << 20);
    const char tok[] = "n,,n=broker,r=abc";
    kafka_write_SaslAuthenticateRequest(&w, 6, "c", tok, strlen(tok));
    TT_ASSERT_EQ_INT(parse_frame(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.hdr.api_key, KAFKA_API_SaslAuthenticate);
    TT_ASSERT_EQ_INT(q.hdr.api_version, 2);
    TT_ASSERT_EQ_INT(q.u.sasl_authenticate.auth_bytes.len, (int)strlen(tok));
    TT_ASSERT(!memcmp(q.u.sasl_authenticate.auth_bytes.p, tok, strlen(tok)));
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(sasl_responses_parse)
{
    /* SaslHandshake v1 answer: header v0, ErrorCode, Mechanisms */
    kw w;
    kw_init(&w, 1 << 16);
    kw_i32(&w, 5);
    kw_i16(&w, 33); /* UNSUPPORTED_SASL_MECHANISM */
    kw_array(&w, 0, 2);
    kw_str(&w, 0, "PLAIN");
    kw_str(&w, 0, "SCRAM-SHA-256");
    for (size_t cut = 0; cut <= w.len; cut++) {
        karena a;
        karena_init(&a, 1 << 16);
        kc_sasl_handshake_resp h;
        char err[128];
        int rc = kafka_read_SaslHandshakeResponse(w.d, cut, &a, &h, err, sizeof err);
        TT_ASSERT_EQ_INT(rc, cut == w.len ? 0 : -1);
        if (cut == w.len) {
            TT_ASSERT_EQ_INT(h.correlation_id, 5);
            TT_ASSERT_EQ_INT(h.error, 33);
            TT_ASSERT_EQ_INT(h.nmechanisms, 2);
            TT_ASSERT_STR(h.mechanisms[1], "SCRAM-SHA-256");
        }
        karena_free(&a);
    }
    kw_free(&w);
    /* SaslAuthenticate v2 answer: header v1, ErrorCode, ErrorMessage,
     * AuthBytes, SessionLifetimeMs, tags (as sasl.c's auth_respond) */
    kw_init(&w, 1 << 16);
    kw_i32(&w, 6);
    kw_tags(&w, 1);
    kw_i16(&w, 58); /* SASL_AUTHENTICATION_FAILED */
    kw_str(&w, 1, "Authentication failed: Invalid username or password");
    kw_bytes(&w, 1, "", 0);
    kw_i64(&w, 0);
    kw_tags(&w, 1);
    for (size_t cut = 0; cut <= w.len; cut++) {
        karena a;
        karena_init(&a, 1 << 16);
        kc_sasl_auth_resp r;
        char err[128];
        int rc = kafka_read_SaslAuthenticateResponse(w.d, cut, &a, &r, err, sizeof err);
        TT_ASSERT_EQ_INT(rc, cut == w.len ? 0 : -1);
        if (cut == w.len) {
            TT_ASSERT_EQ_INT(r.correlation_id, 6);
            TT_ASSERT_EQ_INT(r.error, 58);
            TT_ASSERT_STR(r.error_message, "Authentication failed: Invalid username or password");
            TT_ASSERT_EQ_INT(r.auth_bytes.len, 0);
        }
        karena_free(&a);
    }
    kw_free(&w);
    /* success with a server-final and a lifetime; null message */
    kw_init(&w, 1 << 16);
    kw_i32(&w, 7);
    kw_tags(&w, 1);
    kw_i16(&w, 0);
    kw_str(&w, 1, NULL);
    kw_bytes(&w, 1, "v=abc", 5);
    kw_i64(&w, 3600000);
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kc_sasl_auth_resp r;
    char err[128];
    TT_ASSERT_EQ_INT(kafka_read_SaslAuthenticateResponse(w.d, w.len, &a, &r, err, sizeof err), 0);
    TT_ASSERT(r.error_message == NULL);
    TT_ASSERT_EQ_INT(r.auth_bytes.len, 5);
    TT_ASSERT(!memcmp(r.auth_bytes.p, "v=abc", 5));
    TT_ASSERT_EQ_INT(r.session_lifetime_ms, 3600000);
    karena_free(&a);
    kw_free(&w);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(scram_against_server);
    TT_RUN(scram_client_refuses_bad_server_first);
    TT_RUN(plain_against_server);
    TT_RUN(sasl_requests_parse_on_the_server);
    TT_RUN(sasl_responses_parse);
    return tt_summary();
}
