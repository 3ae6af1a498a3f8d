/*
 * sasl.c — SASL on SASL_PLAINTEXT:// and SASL_SSL:// listeners: SaslHandshake
 * v0-1, SaslAuthenticate v0-2 with PLAIN and SCRAM-SHA-256/512
 * (sasl.enabled.mechanisms), connections.max.reauth.ms, and KIP-554's
 * DescribeUserScramCredentials / AlterUserScramCredentials.
 *
 * Credentials are auth/'s users file (<log.dirs>/.broker/users; format in
 * auth/scram.h): salted SCRAM keys only, never a password. PLAIN is checked
 * by deriving the SCRAM-SHA-512 (else -256) key from the password given;
 * that PBKDF2 runs on the broker's own one-thread sasl pool, not the loop,
 * and not on a pool that flushes or reads (a flood of PLAIN attempts slows
 * only other PLAIN logins; each connection has at most one in flight). SCRAM costs the loop only
 * HMACs. The loop re-reads the file when its mtime changes (tierctl users
 * writes it); AlterUserScramCredentials writes it on the meta pool.
 *
 * Until a connection of a SASL listener has authenticated, only ApiVersions,
 * SaslHandshake and SaslAuthenticate are served; anything else closes it
 * (net.c asks sasl_request_allowed). A failed login is answered
 * SASL_AUTHENTICATION_FAILED, logged with the peer's address (rate-limited
 * like every log line) and the connection closed once the answer is sent.
 * An unknown user gets a challenge all the same (a random credential), so
 * the answers do not tell which users exist.
 *
 * Thread: loop thread, except the jobs' `run`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth/scram.h"
#include "broker.h"

#define SASL_PLAIN 3 /* next to TS_SCRAM_SHA256 (1) and TS_SCRAM_SHA512 (2) */

struct bsasl {
    ts_users users;
    char path[1100];
    struct timespec mtime;
    int64_t next_check_ms;
    int64_t reauth_ms;        /* connections.max.reauth.ms; 0 = never */
    int enabled[4];           /* by mechanism */
    char enabled_list[256];
    int saving;               /* an AlterUserScramCredentials write in flight */
    bpool *pool;              /* PLAIN's PBKDF2 */
};

static int mech_parse(const char *name)
{
    if (!strcmp(name, "PLAIN")) return SASL_PLAIN;
    return ts_scram_mech_parse(name);
}

static const char *mech_name(int m) { return m == SASL_PLAIN ? "PLAIN" : ts_scram_mech_name(m); }

/* Re-reads the users file when it changed (tierctl users, another writer). */
static void users_refresh(bsasl *s, int force)
{
    struct stat st;
    struct timespec m = {0, 0};
    if (stat(s->path, &st) == 0) m = st.st_mtim;
    if (!force && m.tv_sec == s->mtime.tv_sec && m.tv_nsec == s->mtime.tv_nsec) return;
    ts_users u;
    char err[512];
    if (ts_users_load(&u, s->path, err, sizeof err) != 0) {
        blog_error("users file: %s (keeping the previous users)", err);
        return;
    }
    ts_users_free(&s->users);
    s->users = u;
    s->mtime = m;
    blog_info("users file %s: %zu credentials", s->path, u.n);
}

int sasl_init(broker *b, int needed, char *err, size_t errlen)
{
    bsasl *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(s->path, sizeof s->path, "%s/users", b->meta_dir);
    s->reauth_ms = bconfig_int(&b->cfg, "connections.max.reauth.ms");
    snprintf(s->enabled_list, sizeof s->enabled_list, "%s",
             bconfig_get(&b->cfg, "sasl.enabled.mechanisms"));
    char list[256], *save = NULL;
    snprintf(list, sizeof list, "%s", s->enabled_list);
    for (char *m = strtok_r(list, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
        int k = mech_parse(m);
        if (!k && !needed) continue; /* Kafka's default GSSAPI, no SASL listener */
        if (!k) {
            snprintf(err, errlen,
                     "listeners has a SASL_PLAINTEXT or SASL_SSL listener, but "
                     "sasl.enabled.mechanisms names %s, which is not supported (set PLAIN, "
                     "SCRAM-SHA-256 and/or SCRAM-SHA-512)",
                     m);
            free(s);
            return -1;
        }
        s->enabled[k] = 1;
    }
    if (needed && !(s->enabled[1] || s->enabled[2] || s->enabled[3])) {
        snprintf(err, errlen,
                 "listeners has a SASL_PLAINTEXT or SASL_SSL listener, but "
                 "sasl.enabled.mechanisms is empty (set PLAIN, SCRAM-SHA-256 and/or "
                 "SCRAM-SHA-512)");
        free(s);
        return -1;
    }
    if (needed && !(s->pool = bpool_create(b, "sasl", 1))) {
        snprintf(err, errlen, "cannot start the sasl thread");
        free(s);
        return -1;
    }
    b->sasl = s;
    users_refresh(s, 1);
    return 0;
}

void sasl_free(broker *b)
{
    if (!b->sasl) return;
    bpool_destroy(b->sasl->pool);
    ts_users_free(&b->sasl->users);
    free(b->sasl);
    b->sasl = NULL;
}

void sasl_tick(broker *b, int64_t now)
{
    bsasl *s = b->sasl;
    if (!s || now < s->next_check_ms || s->saving) return;
    s->next_check_ms = now + 1000;
    users_refresh(s, 0);
}

/* ---------------------------------------------------------------- gate */

void sasl_conn_free(bauth *a)
{
    if (a->scram) explicit_bzero(a->scram, sizeof *a->scram);
    free(a->scram);
    a->scram = NULL;
}

int sasl_request_allowed(broker *b, conn *c, int16_t api_key, const char **why)
{
    const struct blistener *l = conn_listener(c);
    if (!l || (l->proto != BSEC_SASL_PLAINTEXT && l->proto != BSEC_SASL_SSL)) return 1;
    if (api_key == KAFKA_API_ApiVersions || api_key == KAFKA_API_SaslHandshake ||
        api_key == KAFKA_API_SaslAuthenticate)
        return 1;
    bauth *a = conn_auth(c);
    if (!a->authenticated) {
        *why = "request before SASL authentication";
        return 0;
    }
    if (a->expires_ms && bclock_ms() >= a->expires_ms) {
        *why = "SASL session expired (connections.max.reauth.ms) without re-authentication";
        return 0;
    }
    return 1;
}

/* --------------------------------------------------------- SaslHandshake */

void handle_SaslHandshake(broker *b, reply *r, kafka_request *q)
{
    bsasl *s = b->sasl;
    bauth *a = conn_auth(r->c);
    const struct blistener *l = conn_listener(r->c);
    int sasl_listener = l && (l->proto == BSEC_SASL_PLAINTEXT || l->proto == BSEC_SASL_SSL);
    int m = mech_parse(q->u.sasl_handshake.mechanism);
    int16_t err = KAFKA_NONE;
    if (!sasl_listener || a->step != 0)
        err = KAFKA_ILLEGAL_SASL_STATE;
    else if (!m || !s->enabled[m])
        err = KAFKA_UNSUPPORTED_SASL_MECHANISM;
    if (err == KAFKA_NONE) {
        a->mech = m;
        a->step = 1;
    }
    kw w;
    reply_begin(r, &w);
    kw_i16(&w, err);
    int32_t n = 0;
    for (int k = 1; k <= 3; k++) n += s->enabled[k];
    kw_array(&w, 0, n);
    for (int k = 1; k <= 3; k++)
        if (s->enabled[k]) kw_str(&w, 0, mech_name(k));
    conn *c = r->c;
    reply_end(b, r, &w);
    if (err) conn_close_after_reply(b, c);
}

/* ------------------------------------------------------ SaslAuthenticate */

/* Printable copy of an untrusted user name for a log line. */
static void name_for_log(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < outlen; p++)
        out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    out[o] = 0;
}

static void auth_log_failure(conn *c, int mech, const char *user, const char *why)
{
    char u[128];
    name_for_log(user ? user : "", u, sizeof u);
    blog_warn("%s: SASL %s authentication failed for user '%s': %s", conn_peer(c), mech_name(mech),
              u, why);
}

/* Answers one SaslAuthenticate: err (0 = step ok), token to send. */
static void auth_respond(broker *b, reply *r, int16_t err, const char *msg, const void *tok,
                         size_t toklen)
{
    conn *c = r->c;
    bauth *a = conn_auth(c);
    int v = r->hdr.api_version, f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    kw_i16(&w, err);
    kw_str(&w, f, err ? msg : NULL);
    kw_bytes(&w, f, tok, (int32_t)toklen);
    if (v >= 1) kw_i64(&w, err ? 0 : a->lifetime_ms);
    kw_tags(&w, f);
    reply_end(b, r, &w);
    if (err) conn_close_after_reply(b, c);
}

/* The exchange succeeded as user: the connection is authenticated (again). */
static int auth_succeed(broker *b, conn *c, const char *user)
{
    bauth *a = conn_auth(c);
    if (a->authenticated && strcmp(a->principal, user)) {
        auth_log_failure(c, a->mech, user, "re-authentication as another user");
        return -1;
    }
    snprintf(a->principal, sizeof a->principal, "%s", user);
    a->authenticated = 1;
    a->step = 0;
    int64_t reauth = b->sasl->reauth_ms;
    a->lifetime_ms = reauth;
    a->expires_ms = reauth > 0 ? bclock_ms() + reauth : 0;
    blog_debug("%s: authenticated as User:%s (%s)", conn_peer(c), user, mech_name(a->mech));
    return 0;
}

static const char *const AUTH_FAILED = "Authentication failed: Invalid username or password";

/* PLAIN's PBKDF2 runs on the sasl pool. */
typedef struct plain_job {
    bjob j;
    broker *b;
    reply r;
    ts_scram_cred cred;
    int have_cred, ok;
    char user[TS_SCRAM_MAX_NAME], pw[512];
} plain_job;

static void plain_run(bjob *j)
{
    plain_job *p = (plain_job *)j;
    p->ok = p->have_cred && ts_scram_password_matches(&p->cred, p->pw, strlen(p->pw));
    explicit_bzero(p->pw, sizeof p->pw);
}

static void plain_done(bjob *j)
{
    plain_job *p = (plain_job *)j;
    conn *c = p->r.c;
    conn_auth(c)->step = 1;
    if (!conn_closed(c)) {
        if (!p->ok) auth_log_failure(c, SASL_PLAIN, p->user, "invalid credentials");
        if (p->ok && auth_succeed(p->b, c, p->user) == 0)
            auth_respond(p->b, &p->r, KAFKA_NONE, NULL, "", 0);
        else
            auth_respond(p->b, &p->r, KAFKA_SASL_AUTHENTICATION_FAILED, AUTH_FAILED, "", 0);
    } else {
        reply_drop(p->b, &p->r);
    }
    free(p);
}

static void auth_plain(broker *b, reply *r, const uint8_t *tok, size_t len)
{
    plain_job *p = calloc(1, sizeof *p);
    char err[128];
    if (!p) {
        auth_respond(b, r, KAFKA_SASL_AUTHENTICATION_FAILED, "out of memory", "", 0);
        return;
    }
    if (ts_sasl_plain_parse(tok, len, p->user, sizeof p->user, p->pw, sizeof p->pw, err,
                            sizeof err) != 0) {
        auth_log_failure(r->c, SASL_PLAIN, "", err);
        auth_respond(b, r, KAFKA_SASL_AUTHENTICATION_FAILED, err, "", 0);
        free(p);
        return;
    }
    const ts_scram_cred *cr = ts_users_find(&b->sasl->users, p->user, TS_SCRAM_SHA512);
    if (!cr) cr = ts_users_find(&b->sasl->users, p->user, TS_SCRAM_SHA256);
    if (cr) p->cred = *cr;
    p->have_cred = cr != NULL;
    p->b = b;
    p->r = *r;
    r->c = NULL; /* the job answers */
    p->j.run = plain_run;
    p->j.done = plain_done;
    conn_auth(p->r.c)->step = 3; /* a check in flight: no second one */
    bpool_submit(b->sasl->pool, &p->j);
}

static void auth_scram(broker *b, reply *r, const uint8_t *tok, size_t len)
{
    bauth *a = conn_auth(r->c);
    char err[256], out[512];
    if (a->step == 1) {
        if (!a->scram && !(a->scram = calloc(1, sizeof *a->scram))) {
            auth_respond(b, r, KAFKA_SASL_AUTHENTICATION_FAILED, "out of memory", "", 0);
            return;
        }
        if (ts_scram_parse_client_first(a->scram, a->mech, (const char *)tok, len, err,
                                        sizeof err) != 0 ||
            ts_scram_server_challenge(a->scram,
                                      ts_users_find(&b->sasl->users, a->scram->user, a->mech),
                                      err, sizeof err) != 0) {
            auth_log_failure(r->c, a->mech, a->scram->user, err);
            auth_respond(b, r, KAFKA_SASL_AUTHENTICATION_FAILED, err, "", 0);
            return;
        }
        a->step = 2;
        auth_respond(b, r, KAFKA_NONE, NULL, a->scram->server_first,
                     strlen(a->scram->server_first));
        return;
    }
    if (ts_scram_server_final(a->scram, (const char *)tok, len, out, sizeof out, err,
                              sizeof err) != 0 ||
        auth_succeed(b, r->c, a->scram->user) != 0) {
        auth_log_failure(r->c, a->mech, a->scram->user, err);
        auth_respond(b, r, KAFKA_SASL_AUTHENTICATION_FAILED, AUTH_FAILED, "", 0);
        return;
    }
    explicit_bzero(a->scram, sizeof *a->scram);
    auth_respond(b, r, KAFKA_NONE, NULL, out, strlen(out));
}

void sasl_authenticate(broker *b, reply *r, const uint8_t *tok, size_t len)
{
    bauth *a = conn_auth(r->c);
    if (a->step == 0 || a->step == 3) {
        auth_respond(b, r, KAFKA_ILLEGAL_SASL_STATE,
                     a->step ? "SaslAuthenticate while the previous one is being checked"
                             : "SaslAuthenticate before SaslHandshake",
                     "", 0);
        return;
    }
    if (a->mech == SASL_PLAIN)
        auth_plain(b, r, tok, len);
    else
        auth_scram(b, r, tok, len);
}

void handle_SaslAuthenticate(broker *b, reply *r, kafka_request *q)
{
    kslice t = q->u.sasl_authenticate.auth_bytes;
    sasl_authenticate(b, r, t.p, (size_t)t.len);
}

/* ------------------------------------------------------------ KIP-554 */

/* With an authorizer: DESCRIBE (describe) or ALTER on the cluster, as Kafka.
 * Without: super.users when it is set (Kafka without one lets everyone). */
static int may_manage_users(broker *b, reply *r, int alter)
{
    if (acl_enabled(b))
        return acl_check(b, r, alter ? ACL_OP_ALTER : ACL_OP_DESCRIBE, ACL_RES_CLUSTER, NULL);
    conn *c = r->c;
    const char *su = bconfig_get(&b->cfg, "super.users");
    if (!su || !*su) return 1;
    char me[300], list[4096], *save = NULL;
    snprintf(me, sizeof me, "User:%s", conn_principal(c));
    snprintf(list, sizeof list, "%s", su);
    for (char *t = strtok_r(list, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        while (*t == ' ') t++;
        if (!strcmp(t, me)) return 1;
    }
    return 0;
}

static const char *refusal(const broker *b)
{
    return acl_enabled(b) ? "not authorized on the cluster (ACLs)" : "not in super.users";
}

static void describe_user(kw *w, const ts_users *u, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < u->n; i++) n += !strcmp(u->v[i].name, name);
    kw_str(w, 1, name);
    kw_i16(w, n ? KAFKA_NONE : KAFKA_RESOURCE_NOT_FOUND);
    kw_str(w, 1, n ? NULL : "no credentials for this user");
    kw_array(w, 1, n);
    for (size_t i = 0; i < u->n; i++)
        if (!strcmp(u->v[i].name, name)) {
            kw_i8(w, (int8_t)u->v[i].cred.mech);
            kw_i32(w, u->v[i].cred.iterations);
            kw_tags(w, 1);
        }
    kw_tags(w, 1);
}

/* Whether entry i is its user's first (a user may have two mechanisms). */
static int user_first_entry(const ts_users *u, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (!strcmp(u->v[k].name, u->v[i].name)) return 0;
    return 1;
}

void handle_DescribeUserScramCredentials(broker *b, reply *r, kafka_request *q)
{
    const ts_users *u = &b->sasl->users;
    const kafka_DescribeUserScramCredentialsRequest *d = &q->u.describe_scram;
    int allowed = may_manage_users(b, r, 0);
    kw w;
    reply_begin(r, &w);
    kw_i32(&w, 0);
    kw_i16(&w, allowed ? KAFKA_NONE : KAFKA_CLUSTER_AUTHORIZATION_FAILED);
    kw_str(&w, 1, allowed ? NULL : refusal(b));
    if (!allowed) {
        kw_array(&w, 1, 0);
    } else if (d->nusers <= 0) { /* every user, each once */
        int32_t n = 0;
        for (size_t i = 0; i < u->n; i++) n += user_first_entry(u, i);
        kw_array(&w, 1, n);
        for (size_t i = 0; i < u->n; i++)
            if (user_first_entry(u, i)) describe_user(&w, u, u->v[i].name);
    } else {
        kw_array(&w, 1, d->nusers);
        for (int32_t i = 0; i < d->nusers; i++) describe_user(&w, u, d->users[i]);
    }
    kw_tags(&w, 1);
    reply_end(b, r, &w);
}

/* The users file is written on the meta pool from a copy; the answer waits
 * for the write. */
typedef struct alter_job {
    bjob j;
    broker *b;
    reply r;
    ts_users copy;
    int ok;
    char err[512];
    int32_t n;
    struct alter_result {
        char name[TS_SCRAM_MAX_NAME];
        int16_t err;
        char msg[200];
    } *res;
} alter_job;

static void alter_run(bjob *j)
{
    alter_job *a = (alter_job *)j;
    a->ok = ts_users_save(&a->copy, a->b->sasl->path, a->err, sizeof a->err) == 0;
}

/* Writes the answer and frees a. */
static void alter_answer(broker *b, alter_job *a)
{
    kw w;
    reply_begin(&a->r, &w);
    kw_i32(&w, 0);
    kw_array(&w, 1, a->n);
    for (int32_t i = 0; i < a->n; i++) {
        int16_t e = a->ok ? a->res[i].err : KAFKA_UNKNOWN_SERVER_ERROR;
        kw_str(&w, 1, a->res[i].name);
        kw_i16(&w, e);
        kw_str(&w, 1, e == KAFKA_NONE ? NULL : a->ok ? a->res[i].msg : "cannot write the users file");
        kw_tags(&w, 1);
    }
    kw_tags(&w, 1);
    reply_end(b, &a->r, &w);
    ts_users_free(&a->copy);
    free(a->res);
    free(a);
}

static void alter_done(bjob *j)
{
    alter_job *a = (alter_job *)j;
    broker *b = a->b;
    b->sasl->saving = 0;
    if (a->ok) {
        ts_users_free(&b->sasl->users);
        b->sasl->users = a->copy;
        memset(&a->copy, 0, sizeof a->copy);
        users_refresh(b->sasl, 0); /* takes the new mtime; content is the copy */
    } else {
        blog_error("AlterUserScramCredentials: %s", a->err);
    }
    alter_answer(b, a);
}

/* Applies one upsertion to the copy; the result's error and message. */
static void alter_upsert(ts_users *u, const kafka_ScramCredentialUpsertion *x,
                         struct alter_result *res)
{
    ts_scram_cred c;
    if (!ts_scram_digest_len(x->mechanism)) {
        res->err = KAFKA_UNSUPPORTED_SASL_MECHANISM;
        snprintf(res->msg, sizeof res->msg, "unknown SCRAM mechanism %d", x->mechanism);
    } else if (ts_scram_cred_from_salted(x->mechanism, x->salted_password.p,
                                         (size_t)x->salted_password.len, x->salt.p,
                                         (size_t)x->salt.len, x->iterations, &c, res->msg,
                                         sizeof res->msg) != 0) {
        res->err = KAFKA_UNACCEPTABLE_CREDENTIAL;
    } else if (ts_users_set(u, x->name, &c) != 0) {
        res->err = KAFKA_UNACCEPTABLE_CREDENTIAL;
        snprintf(res->msg, sizeof res->msg, "user name empty or longer than %d bytes",
                 TS_SCRAM_MAX_NAME - 1);
    }
}

static int users_copy(ts_users *dst, const ts_users *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->n; i++)
        if (ts_users_set(dst, src->v[i].name, &src->v[i].cred) != 0) return -1;
    return 0;
}

void handle_AlterUserScramCredentials(broker *b, reply *r, kafka_request *q)
{
    const kafka_AlterUserScramCredentialsRequest *x = &q->u.alter_scram;
    alter_job *a = calloc(1, sizeof *a);
    int32_t n = x->ndeletions + x->nupsertions;
    if (a) a->res = calloc((size_t)n + 1, sizeof *a->res);
    if (!a || !a->res || users_copy(&a->copy, &b->sasl->users) != 0) {
        if (a) {
            ts_users_free(&a->copy);
            free(a->res);
        }
        free(a);
        conn *c = r->c;
        reply_drop(b, r);
        conn_close(b, c, "out of memory");
        return;
    }
    int allowed = may_manage_users(b, r, 1) && !b->sasl->saving;
    for (int32_t i = 0; i < x->ndeletions; i++) {
        struct alter_result *res = &a->res[a->n++];
        snprintf(res->name, sizeof res->name, "%s", x->deletions[i].name);
        if (!allowed) {
            res->err = KAFKA_CLUSTER_AUTHORIZATION_FAILED;
            snprintf(res->msg, sizeof res->msg, "%s",
                     b->sasl->saving ? "another change is being written" : refusal(b));
        } else if (!ts_users_delete(&a->copy, x->deletions[i].name, x->deletions[i].mechanism)) {
            res->err = KAFKA_RESOURCE_NOT_FOUND;
            snprintf(res->msg, sizeof res->msg, "no such credential");
        }
    }
    for (int32_t i = 0; i < x->nupsertions; i++) {
        struct alter_result *res = &a->res[a->n++];
        snprintf(res->name, sizeof res->name, "%s", x->upsertions[i].name);
        if (!allowed) {
            res->err = KAFKA_CLUSTER_AUTHORIZATION_FAILED;
            snprintf(res->msg, sizeof res->msg, "%s", refusal(b));
        } else {
            alter_upsert(&a->copy, &x->upsertions[i], res);
        }
    }
    a->b = b;
    a->r = *r;
    r->c = NULL;
    if (!allowed) { /* nothing to write */
        a->ok = 1;
        alter_answer(b, a);
        return;
    }
    a->j.run = alter_run;
    a->j.done = alter_done;
    b->sasl->saving = 1;
    bpool_submit(b->meta_pool, &a->j);
}
