/* test_scram.c — auth/: SCRAM-SHA-256 against RFC 7677's example exchange,
 * refusals (nonce, channel binding, proof), PLAIN's message, credentials from
 * a salted password (KIP-554), and the users file round trip and mode. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth/scram.h"
#include "tests/tt.h"

#define CF "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SF "r=" NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define CFINAL "c=biws,r=" NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* The RFC's server state after its server-first (its nonce, not ours). */
static int rfc_server(ts_scram_server *s, const char *password)
{
    char err[256];
    uint8_t salt[32];
    size_t sl;
    if (ts_scram_parse_client_first(s, TS_SCRAM_SHA256, CF, strlen(CF), err, sizeof err) ||
        ts_auth_b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof salt, &sl) ||
        ts_scram_cred_make(TS_SCRAM_SHA256, password, strlen(password), salt, sl, 4096, &s->cred,
                           err, sizeof err))
        return -1;
    snprintf(s->nonce, sizeof s->nonce, "%s", NONCE);
    snprintf(s->server_first, sizeof s->server_first, "%s", SF);
    return 0;
}

TT_TEST(rfc7677_exchange)
{
    ts_scram_server s;
    char out[256], err[256];
    TT_ASSERT_EQ_INT(rfc_server(&s, "pencil"), 0);
    TT_ASSERT_STR(s.user, "user");
    TT_ASSERT_STR(s.client_first_bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
    TT_ASSERT_EQ_INT(ts_scram_server_final(&s, CFINAL, strlen(CFINAL), out, sizeof out, err,
                                           sizeof err),
                     0);
    TT_ASSERT_STR(out, SFINAL);
    TT_ASSERT(ts_scram_password_matches(&s.cred, "pencil", 6));
    TT_ASSERT(!ts_scram_password_matches(&s.cred, "pencil!", 7));
}

TT_TEST(refusals)
{
    ts_scram_server s;
    char out[256], err[256];
    TT_ASSERT_EQ_INT(rfc_server(&s, "not-pencil"), 0);
    TT_ASSERT_EQ_INT(ts_scram_server_final(&s, CFINAL, strlen(CFINAL), out, sizeof out, err,
                                           sizeof err),
                     -1);
    TT_ASSERT(strstr(err, "invalid credentials") != NULL);
    TT_ASSERT_EQ_INT(rfc_server(&s, "pencil"), 0);
    const char *bad_nonce = "c=biws,r=rOprNGfwEbeRWgbNEkqOXXX,p=AAAA";
    TT_ASSERT_EQ_INT(ts_scram_server_final(&s, bad_nonce, strlen(bad_nonce), out, sizeof out, err,
                                           sizeof err),
                     -1);
    TT_ASSERT(strstr(err, "nonce") != NULL);
    const char *bad_cb = "c=eSws,r=" NONCE ",p=AAAA";
    TT_ASSERT_EQ_INT(ts_scram_server_final(&s, bad_cb, strlen(bad_cb), out, sizeof out, err,
                                           sizeof err),
                     -1);
    TT_ASSERT(strstr(err, "channel binding") != NULL);
    /* client-first: channel binding asked, authzid of someone else, bad saslname */
    const char *cfs[] = {"p=tls-unique,,n=u,r=x", "n,a=root,n=u,r=x", "n,,n=a=3Xb,r=x",
                         "n,,n=u", "n,a=u", "n,,r=x,n=u", ""};
    for (size_t i = 0; i < sizeof cfs / sizeof cfs[0]; i++)
        TT_ASSERT_MSG(ts_scram_parse_client_first(&s, TS_SCRAM_SHA512, cfs[i], strlen(cfs[i]),
                                                  err, sizeof err) == -1,
                      "accepted %s", cfs[i]);
    /* an escaped name, an authzid equal to the user, extensions after r= */
    const char *ok = "n,a=we=2Cird,n=we=2Cird,r=abc,tokenauth=true";
    TT_ASSERT_EQ_INT(ts_scram_parse_client_first(&s, TS_SCRAM_SHA512, ok, strlen(ok), err,
                                                 sizeof err),
                     0);
    TT_ASSERT_STR(s.user, "we,ird");
    TT_ASSERT_STR(s.gs2, "n,a=we=2Cird,");
}

TT_TEST(unknown_user_gets_a_challenge)
{
    ts_scram_server s;
    char err[256];
    TT_ASSERT_EQ_INT(ts_scram_parse_client_first(&s, TS_SCRAM_SHA512, "n,,n=ghost,r=abc", 16,
                                                 err, sizeof err),
                     0);
    TT_ASSERT_EQ_INT(ts_scram_server_challenge(&s, NULL, err, sizeof err), 0);
    TT_ASSERT(!strncmp(s.server_first, "r=abc", 5));
    TT_ASSERT(strstr(s.server_first, ",i=4096") != NULL);
}

TT_TEST(plain_message)
{
    char u[64], p[64], err[128];
    TT_ASSERT_EQ_INT(ts_sasl_plain_parse((const uint8_t *)"\0alice\0pw", 9, u, sizeof u, p,
                                         sizeof p, err, sizeof err),
                     0);
    TT_ASSERT_STR(u, "alice");
    TT_ASSERT_STR(p, "pw");
    TT_ASSERT_EQ_INT(ts_sasl_plain_parse((const uint8_t *)"alice\0alice\0pw", 14, u, sizeof u, p,
                                         sizeof p, err, sizeof err),
                     0);
    TT_ASSERT_EQ_INT(ts_sasl_plain_parse((const uint8_t *)"root\0alice\0pw", 13, u, sizeof u, p,
                                         sizeof p, err, sizeof err),
                     -1);
    TT_ASSERT_EQ_INT(ts_sasl_plain_parse((const uint8_t *)"\0alice\0", 7, u, sizeof u, p,
                                         sizeof p, err, sizeof err),
                     -1);
    TT_ASSERT_EQ_INT(ts_sasl_plain_parse((const uint8_t *)"alice", 5, u, sizeof u, p, sizeof p,
                                         err, sizeof err),
                     -1);
}

TT_TEST(salted_password_credential)
{
    ts_scram_cred a, b;
    char err[256];
    const uint8_t salt[] = "0123456789abcdef";
    TT_ASSERT_EQ_INT(ts_scram_cred_make(TS_SCRAM_SHA256, "pencil", 6, salt, 16, 4096, &a, err,
                                        sizeof err),
                     0);
    /* KIP-554 sends Hi(password, salt, i): the keys derived from it must be
     * those derived from the password. */
    uint8_t salted[32];
    TT_ASSERT_EQ_INT(PKCS5_PBKDF2_HMAC("pencil", 6, salt, 16, 4096, EVP_sha256(), 32, salted), 1);
    TT_ASSERT_EQ_INT(ts_scram_cred_from_salted(TS_SCRAM_SHA256, salted, 32, salt, 16, 4096, &b,
                                               err, sizeof err),
                     0);
    TT_ASSERT(!memcmp(a.stored_key, b.stored_key, 32) && !memcmp(a.server_key, b.server_key, 32));
    TT_ASSERT_EQ_INT(ts_scram_cred_from_salted(TS_SCRAM_SHA256, salted, 31, salt, 16, 4096, &b,
                                               err, sizeof err),
                     -1);
    TT_ASSERT_EQ_INT(ts_scram_cred_make(TS_SCRAM_SHA256, "x", 1, NULL, 0, 100, &b, err, sizeof err),
                     -1);
    TT_ASSERT(strstr(err, "iterations") != NULL);
}

TT_TEST(users_file)
{
    char dir[] = "/tmp/test-scram-XXXXXX", path[256], err[256];
    TT_ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/users", dir);
    ts_users u = {0}, v;
    ts_scram_cred c;
    TT_ASSERT_EQ_INT(ts_users_load(&u, path, err, sizeof err), 0); /* missing = empty */
    TT_ASSERT_EQ_INT((int)u.n, 0);
    TT_ASSERT_EQ_INT(ts_scram_cred_make(TS_SCRAM_SHA512, "pw", 2, NULL, 0, 4096, &c, err,
                                        sizeof err),
                     0);
    TT_ASSERT_EQ_INT(ts_users_set(&u, "alice smith", &c), 0);
    c.mech = TS_SCRAM_SHA256;
    TT_ASSERT_EQ_INT(ts_users_set(&u, "alice smith", &c), 0);
    TT_ASSERT_EQ_INT(ts_users_save(&u, path, err, sizeof err), 0);
    struct stat st;
    TT_ASSERT_EQ_INT(stat(path, &st), 0);
    TT_ASSERT_EQ_INT((int)(st.st_mode & 0777), 0600);
    TT_ASSERT_EQ_INT(ts_users_load(&v, path, err, sizeof err), 0);
    TT_ASSERT_EQ_INT((int)v.n, 2);
    const ts_scram_cred *f = ts_users_find(&v, "alice smith", TS_SCRAM_SHA512);
    TT_ASSERT(f && ts_scram_password_matches(f, "pw", 2));
    TT_ASSERT_EQ_INT(ts_users_delete(&v, "alice smith", 0), 2);
    ts_users_free(&v);
    FILE *bad = fopen(path, "w");
    fputs("SCRAM-SHA-512 zz 4096 AAAA AAAA AAAA\n", bad);
    fclose(bad);
    TT_ASSERT_EQ_INT(ts_users_load(&v, path, err, sizeof err), -1);
    TT_ASSERT(strstr(err, ":1:") != NULL);
    ts_users_free(&u);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(rfc7677_exchange);
    TT_RUN(refusals);
    TT_RUN(unknown_user_gets_a_challenge);
    TT_RUN(plain_message);
    TT_RUN(salted_password_credential);
    TT_RUN(users_file);
    return tt_summary();
}
