/*
 * tls.c — TLS for the SSL:// and SASL_SSL:// listeners (OpenSSL, TLS 1.2+).
 *
 * One btls per TLS listener holds its SSL_CTX, built from Kafka's ssl.* keys
 * (each may be given per listener as listener.name.<name>.<key>, as in
 * Kafka). Connections never block on TLS: net.c calls tls_read/tls_write on
 * the loop thread, which report when OpenSSL waits for the socket to become
 * readable or writable; the handshake runs inside the first tls_read.
 *
 * Reload: every ssl.reload.check.ms the loop stats the keystore and
 * truststore files; when one changed, a new SSL_CTX is built and used for
 * new connections (open ones keep theirs: OpenSSL refcounts the context). A
 * context that fails to build is logged and the old one stays.
 *
 * Principal of a client certificate: its subject in RFC 2253 form (as Java's
 * X500Principal.getName(), which Kafka uses), mapped through
 * ssl.principal.mapping.rules: DEFAULT or RULE:pattern/replacement/[LU]
 * (POSIX extended regular expressions; $1..$9 in the replacement).
 *
 * Thread: loop thread only, except the client side at the end (a follower
 * connecting to its leader, on the fetcher thread).
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "broker.h"

struct btls {
    SSL_CTX *ctx;
    const bconfig *cfg;
    char listener[64]; /* listener name, for listener.name.<name>.* keys */
    char keystore[1024], truststore[1024];
    struct timespec keystore_mtime, truststore_mtime;
    int64_t next_check_ms, check_interval_ms;
};

/* A setting of this listener: listener.name.<lower-case name>.<key> first,
 * then the plain key (Kafka's lookup order). */
static const char *tls_get(const btls *t, const char *key)
{
    char k[256], name[64];
    size_t i = 0;
    for (; t->listener[i] && i < sizeof name - 1; i++)
        name[i] = (char)((t->listener[i] >= 'A' && t->listener[i] <= 'Z') ? t->listener[i] + 32
                                                                            : t->listener[i]);
    name[i] = 0;
    snprintf(k, sizeof k, "listener.name.%s.%s", name, key);
    for (size_t j = 0; j < t->cfg->n; j++)
        if (!strcmp(t->cfg->items[j].key, k)) return t->cfg->items[j].value;
    const char *v = bconfig_get(t->cfg, key);
    return v ? v : "";
}

/* The first OpenSSL error as text (the queue is cleared). */
static void tls_errstr(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
    ERR_clear_error();
}

static char *file_slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Certificate chain (leaf first) and private key from PEM text. */
static int ctx_use_pem(SSL_CTX *ctx, const char *chain, const char *key, const char *pass,
                       char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(chain, -1);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int ok = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    for (X509 *x; ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL));)
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            X509_free(x);
            ok = 0;
        }
    ERR_clear_error(); /* the end of the chain reads as "no start line" */
    BIO_free(bio);
    if (!ok) {
        tls_errstr(err, errlen, "ssl.keystore: no usable certificate");
        return -1;
    }
    bio = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)pass) : NULL;
    BIO_free(bio);
    ok = pk && SSL_CTX_use_PrivateKey(ctx, pk) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pk);
    if (!ok) {
        tls_errstr(err, errlen,
                   "ssl.keystore: no private key matching the certificate (wrong "
                   "ssl.key.password?)");
        return -1;
    }
    return 0;
}

/* Inline PEM as a properties value is one line (Kafka joins continuation
 * lines): its blocks are rebuilt with newlines, base64 rewrapped at 64
 * columns; whitespace and literal "\\n" between the markers are dropped.
 * Returns a malloc'd string or NULL. */
static char *pem_normalize(const char *in)
{
    size_t cap = strlen(in) * 2 + 64, o = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    const char *p = in;
    while ((p = strstr(p, "-----BEGIN "))) {
        const char *hend = strstr(p + 11, "-----");
        const char *end = hend ? strstr(hend + 5, "-----END ") : NULL;
        const char *eend = end ? strstr(end + 9, "-----") : NULL;
        if (!eend) break;
        o += (size_t)snprintf(out + o, cap - o, "%.*s\n", (int)(hend + 5 - p), p);
        int col = 0;
        for (const char *q = hend + 5; q < end; q++) {
            if (*q == '\\' && q[1] == 'n') {
                q++;
                continue;
            }
            if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
                  *q == '+' || *q == '/' || *q == '='))
                continue;
            out[o++] = *q;
            if (++col == 64) {
                out[o++] = '\n';
                col = 0;
            }
        }
        if (col) out[o++] = '\n';
        o += (size_t)snprintf(out + o, cap - o, "%.*s\n", (int)(eend + 5 - end), end);
        p = eend + 5;
    }
    out[o] = 0;
    return out;
}

static int ctx_use_inline(SSL_CTX *ctx, const char *chain, const char *key, const char *pass,
                          char *err, size_t errlen)
{
    char *c = pem_normalize(chain), *k = pem_normalize(key);
    int rc = c && k ? ctx_use_pem(ctx, c, k, pass, err, errlen) : -1;
    if (!c || !k) snprintf(err, errlen, "out of memory");
    if (k) OPENSSL_cleanse(k, strlen(k));
    free(c);
    free(k);
    return rc;
}

static int ctx_load_keystore(btls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
    const char *type = tls_get(t, "ssl.keystore.type");
    if (strcasecmp(type, "PEM")) {
        snprintf(err, errlen, "ssl.keystore.type=%s: only PEM is supported", type);
        return -1;
    }
    const char *pass = tls_get(t, "ssl.key.password");
    const char *chain = tls_get(t, "ssl.keystore.certificate.chain");
    const char *key = tls_get(t, "ssl.keystore.key");
    if (*chain || *key) {
        if (!*chain || !*key) {
            snprintf(err, errlen,
                     "ssl.keystore.certificate.chain and ssl.keystore.key go together");
            return -1;
        }
        return ctx_use_inline(ctx, chain, key, *pass ? pass : NULL, err, errlen);
    }
    if (!*t->keystore) {
        snprintf(err, errlen,
                 "listener %s needs ssl.keystore.location (or ssl.keystore.certificate.chain "
                 "and ssl.keystore.key)",
                 t->listener);
        return -1;
    }
    size_t len;
    char *pem = file_slurp(t->keystore, &len, err, errlen);
    if (!pem) return -1;
    int rc = ctx_use_pem(ctx, pem, pem, *pass ? pass : NULL, err, errlen);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

static int parse_version(const char *s)
{
    if (!strcmp(s, "TLSv1.2")) return TLS1_2_VERSION;
    if (!strcmp(s, "TLSv1.3")) return TLS1_3_VERSION;
    return 0;
}

/* ssl.enabled.protocols: the lowest and highest of the list (TLS 1.2+). */
static int ctx_set_protocols(btls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
    char list[256];
    snprintf(list, sizeof list, "%s", tls_get(t, "ssl.enabled.protocols"));
    int lo = 0, hi = 0;
    char *save = NULL;
    for (char *p = strtok_r(list, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
        int v = parse_version(p);
        if (!v) {
            snprintf(err, errlen, "ssl.enabled.protocols: %s is not one of TLSv1.2, TLSv1.3", p);
            return -1;
        }
        if (!lo || v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (!lo) {
        snprintf(err, errlen, "ssl.enabled.protocols is empty");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    return 0;
}

/* The OpenSSL name of an IANA cipher name (Kafka's spelling), or NULL. */
static const char *cipher_openssl_name(SSL_CTX *ctx, const char *iana)
{
    STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(ctx);
    for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
        const char *std = SSL_CIPHER_standard_name(c);
        if (std && !strcmp(std, iana)) return SSL_CIPHER_get_name(c);
    }
    return NULL;
}

/* ssl.cipher.suites: IANA names (or OpenSSL's); TLS 1.3 suites go to their
 * own list. Empty = OpenSSL's defaults. */
static int ctx_set_ciphers(btls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
    const char *v = tls_get(t, "ssl.cipher.suites");
    if (!*v) return 0;
    char list[2048], l12[2048] = "", l13[1024] = "";
    snprintf(list, sizeof list, "%s", v);
    SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0"); /* to look names up */
    char *save = NULL;
    for (char *p = strtok_r(list, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
        int is13 = !strncmp(p, "TLS_AES_", 8) || !strncmp(p, "TLS_CHACHA20_", 13);
        const char *name = is13 ? p : cipher_openssl_name(ctx, p);
        char *dst = is13 ? l13 : l12;
        size_t cap = is13 ? sizeof l13 : sizeof l12;
        snprintf(dst + strlen(dst), cap - strlen(dst), "%s%s", *dst ? ":" : "", name ? name : p);
    }
    if ((*l12 && SSL_CTX_set_cipher_list(ctx, l12) != 1) ||
        (!*l12 && SSL_CTX_set_cipher_list(ctx, "DEFAULT") != 1) ||
        (*l13 && SSL_CTX_set_ciphersuites(ctx, l13) != 1)) {
        tls_errstr(err, errlen, "ssl.cipher.suites");
        return -1;
    }
    return 0;
}

static int ctx_set_client_auth(btls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
    const char *auth = tls_get(t, "ssl.client.auth");
    int mode;
    if (!strcasecmp(auth, "none"))
        mode = SSL_VERIFY_NONE;
    else if (!strcasecmp(auth, "requested"))
        mode = SSL_VERIFY_PEER;
    else if (!strcasecmp(auth, "required"))
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else {
        snprintf(err, errlen, "ssl.client.auth=%s: expected none, requested or required", auth);
        return -1;
    }
    if (*t->truststore) {
        if (SSL_CTX_load_verify_locations(ctx, t->truststore, NULL) != 1) {
            tls_errstr(err, errlen, "ssl.truststore.location");
            return -1;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->truststore);
        if (names) SSL_CTX_set_client_CA_list(ctx, names);
    } else if (mode != SSL_VERIFY_NONE) {
        snprintf(err, errlen, "ssl.client.auth=%s needs ssl.truststore.location", auth);
        return -1;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    return 0;
}

static SSL_CTX *ctx_build(btls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_errstr(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    /* No renegotiation (a CPU sink), no compression; session ids scoped to
     * this broker. Buffers are kept per connection (SSL_MODE_RELEASE_BUFFERS
     * cost 40% of TLS produce throughput in bench/kafka; ~34 KiB each). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tierbroker", 10);
    if (ctx_set_protocols(t, ctx, err, errlen) || ctx_set_ciphers(t, ctx, err, errlen) ||
        ctx_load_keystore(t, ctx, err, errlen) || ctx_set_client_auth(t, ctx, err, errlen)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void file_mtime(const char *path, struct timespec *ts)
{
    struct stat st;
    memset(ts, 0, sizeof *ts);
    if (*path && stat(path, &st) == 0) *ts = st.st_mtim;
}

btls *tls_create(const bconfig *cfg, const char *listener, char *err, size_t errlen)
{
    btls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->cfg = cfg;
    snprintf(t->listener, sizeof t->listener, "%s", listener);
    snprintf(t->keystore, sizeof t->keystore, "%s", tls_get(t, "ssl.keystore.location"));
    snprintf(t->truststore, sizeof t->truststore, "%s", tls_get(t, "ssl.truststore.location"));
    t->check_interval_ms = strtoll(tls_get(t, "ssl.reload.check.ms"), NULL, 10);
    file_mtime(t->keystore, &t->keystore_mtime);
    file_mtime(t->truststore, &t->truststore_mtime);
    t->ctx = ctx_build(t, err, errlen);
    if (!t->ctx) {
        free(t);
        return NULL;
    }
    t->next_check_ms = bclock_ms() + t->check_interval_ms;
    return t;
}

void tls_destroy(btls *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

static int ts_differs(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec != b->tv_sec || a->tv_nsec != b->tv_nsec;
}

void tls_maybe_reload(btls *t, int64_t now)
{
    if (!t || t->check_interval_ms <= 0 || now < t->next_check_ms) return;
    t->next_check_ms = now + t->check_interval_ms;
    struct timespec k, s;
    file_mtime(t->keystore, &k);
    file_mtime(t->truststore, &s);
    if (!ts_differs(&k, &t->keystore_mtime) && !ts_differs(&s, &t->truststore_mtime)) return;
    char err[512];
    SSL_CTX *ctx = ctx_build(t, err, sizeof err);
    if (!ctx) {
        /* A file being rewritten may be caught half way: try again next time. */
        blog_warn("listener %s: reloading certificates failed, keeping the old ones: %s",
                  t->listener, err);
        return;
    }
    t->keystore_mtime = k;
    t->truststore_mtime = s;
    SSL_CTX_free(t->ctx); /* connections using it keep their reference */
    t->ctx = ctx;
    blog_info("listener %s: certificates reloaded (%s%s%s)", t->listener, t->keystore,
              *t->truststore ? ", " : "", t->truststore);
}

void *tls_accept(btls *t, int fd)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

void tls_free(void *ssl) { SSL_free(ssl); }

int tls_handshake_done(void *ssl) { return SSL_is_init_finished((SSL *)ssl); }

/* Maps SSL_get_error to tls_read/tls_write's result. */
static ssize_t tls_result(SSL *ssl, int rc, int *want, char *err, size_t errlen)
{
    int e = SSL_get_error(ssl, rc);
    *want = 0;
    switch (e) {
    case SSL_ERROR_WANT_READ: *want = TLS_WANT_READ; return TLS_AGAIN;
    case SSL_ERROR_WANT_WRITE: *want = TLS_WANT_WRITE; return TLS_AGAIN;
    case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (errno == EINTR) return TLS_AGAIN;
            snprintf(err, errlen, "%s", errno ? strerror(errno) : "connection closed by peer");
            ERR_clear_error();
            return errno ? -1 : 0;
        }
        /* fall through */
    default: {
        char what[64];
        snprintf(what, sizeof what, "TLS %s", SSL_is_init_finished(ssl) ? "error" : "handshake");
        tls_errstr(err, errlen, what);
        long vr = SSL_get_verify_result(ssl);
        if (vr != X509_V_OK)
            snprintf(err + strlen(err), errlen - strlen(err), " (client certificate: %s)",
                     X509_verify_cert_error_string(vr));
        return -1;
    }
    }
}

ssize_t tls_read(void *ssl, void *buf, size_t n, int *want, char *err, size_t errlen)
{
    size_t got = 0;
    ERR_clear_error();
    int rc = SSL_read_ex(ssl, buf, n, &got);
    if (rc == 1) return (ssize_t)got;
    return tls_result(ssl, rc, want, err, errlen);
}

ssize_t tls_write(void *ssl, const void *buf, size_t n, int *want, char *err, size_t errlen)
{
    size_t put = 0;
    ERR_clear_error();
    int rc = SSL_write_ex(ssl, buf, n, &put);
    if (rc == 1) return (ssize_t)put;
    return tls_result(ssl, rc, want, err, errlen);
}

/* --------------------------------------------------------- principals */

/* Applies one RULE:pattern/replacement/[LU] to dn; 1 when it matched. */
static int rule_apply(const char *rule, const char *dn, char *out, size_t outlen)
{
    char pat[512], rep[512];
    const char *p = rule + 5, *s1 = strchr(p, '/');
    if (!s1) return 0;
    const char *s2 = strchr(s1 + 1, '/');
    if (!s2 || (size_t)(s1 - p) >= sizeof pat || (size_t)(s2 - s1 - 1) >= sizeof rep) return 0;
    memcpy(pat, p, (size_t)(s1 - p));
    pat[s1 - p] = 0;
    memcpy(rep, s1 + 1, (size_t)(s2 - s1 - 1));
    rep[s2 - s1 - 1] = 0;
    char anchored[520];
    snprintf(anchored, sizeof anchored, "^(%s)$", pat); /* Java's matches(): the whole DN */
    regex_t re;
    if (regcomp(&re, anchored, REG_EXTENDED) != 0) return 0;
    regmatch_t m[11];
    int hit = regexec(&re, dn, 11, m, 0) == 0;
    regfree(&re);
    if (!hit) return 0;
    size_t o = 0;
    for (const char *r = rep; *r && o + 1 < outlen; r++) {
        if (*r == '$' && r[1] >= '1' && r[1] <= '9') {
            int g = r[1] - '0' + 1; /* group 1 is the whole-pattern wrapper */
            r++;
            if (m[g].rm_so < 0) continue;
            for (regoff_t i = m[g].rm_so; i < m[g].rm_eo && o + 1 < outlen; i++) out[o++] = dn[i];
        } else {
            out[o++] = *r;
        }
    }
    out[o] = 0;
    char flag = s2[1];
    for (char *c = out; *c; c++)
        if (flag == 'L' && *c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
        else if (flag == 'U' && *c >= 'a' && *c <= 'z')
            *c = (char)(*c - 32);
    return 1;
}

void tls_map_principal(const char *rules, const char *dn, char *out, size_t outlen)
{
    char list[4096];
    snprintf(list, sizeof list, "%s", rules && *rules ? rules : "DEFAULT");
    /* Rules are comma-separated, but a RULE's pattern may hold commas: split
     * only before "RULE:" and "DEFAULT". */
    for (char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',' || *p == '\n') p++;
        char *next = NULL;
        for (char *q = p + 1; *q; q++)
            if (*q == ',' && (!strncmp(q + 1 + strspn(q + 1, " \n"), "RULE:", 5) ||
                              !strncmp(q + 1 + strspn(q + 1, " \n"), "DEFAULT", 7))) {
                *q = 0;
                next = q + 1;
                break;
            }
        if (!strncmp(p, "DEFAULT", 7)) {
            snprintf(out, outlen, "%s", dn);
            return;
        }
        if (!strncmp(p, "RULE:", 5) && rule_apply(p, dn, out, outlen)) return;
        p = next;
    }
    snprintf(out, outlen, "%s", dn); /* no rule matched: Kafka keeps the DN */
}

int tls_peer_principal(void *ssl, const char *rules, char *out, size_t outlen)
{
    X509 *x = SSL_get1_peer_certificate(ssl);
    if (!x) return 0;
    BIO *bio = BIO_new(BIO_s_mem());
    char dn[1024] = "";
    if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, dn, sizeof dn - 1);
        dn[n > 0 ? n : 0] = 0;
    }
    BIO_free(bio);
    X509_free(x);
    tls_map_principal(rules, dn, out, outlen);
    return 1;
}

/* ------------------------------------------------------- client side */
/* A follower's fetcher connecting to its leader's SSL or SASL_SSL listener
 * (Kafka's inter-broker client): the context is built from the same keys as
 * the listener's (listener.name.<inter-broker listener>.ssl.* first), fresh
 * for every connection, so a replaced keystore or truststore is used at the
 * next reconnect. The socket is blocking (the fetcher's thread, with
 * replica.socket.timeout.ms as SO_RCVTIMEO/SO_SNDTIMEO), so the handshake
 * and every read and write simply block; nothing here runs on the loop.
 * The leader's certificate must chain to ssl.truststore.location (else the
 * system's CAs); with ssl.endpoint.identification.algorithm non-empty
 * (Kafka's default "https") it must also name the advertised host (a DNS
 * name or an IP address in its subjectAltName). The keystore, when set, is
 * presented if the leader asks (ssl.client.auth). Thread: the caller's. */

static SSL_CTX *client_ctx_build(btls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        tls_errstr(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    if (ctx_set_protocols(t, ctx, err, errlen) || ctx_set_ciphers(t, ctx, err, errlen)) goto fail;
    if ((*t->keystore || *tls_get(t, "ssl.keystore.certificate.chain")) &&
        ctx_load_keystore(t, ctx, err, errlen))
        goto fail;
    if (*t->truststore ? SSL_CTX_load_verify_locations(ctx, t->truststore, NULL) != 1
                       : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tls_errstr(err, errlen, "ssl.truststore.location");
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void *tls_client_connect(const bconfig *cfg, const char *listener, int fd, const char *host,
                         int verify_host, char *err, size_t errlen)
{
    btls t = {.cfg = cfg};
    snprintf(t.listener, sizeof t.listener, "%s", listener);
    snprintf(t.keystore, sizeof t.keystore, "%s", tls_get(&t, "ssl.keystore.location"));
    snprintf(t.truststore, sizeof t.truststore, "%s", tls_get(&t, "ssl.truststore.location"));
    ERR_clear_error();
    SSL_CTX *ctx = client_ctx_build(&t, err, errlen);
    if (!ctx) return NULL;
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        tls_errstr(err, errlen, "SSL_new");
        SSL_free(ssl);
        return NULL;
    }
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, host); /* SNI */
    if (verify_host &&
        (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1
               : SSL_set1_host(ssl, host) != 1)) {
        tls_errstr(err, errlen, "TLS: cannot set the host name to verify");
        SSL_free(ssl);
        return NULL;
    }
    int rc = SSL_connect(ssl);
    if (rc != 1) {
        int e = SSL_get_error(ssl, rc);
        long vr = SSL_get_verify_result(ssl);
        if (vr != X509_V_OK) {
            snprintf(err, errlen,
                     "TLS handshake with %s: the broker's certificate is not trusted (%s); "
                     "check ssl.truststore.location%s",
                     host, X509_verify_cert_error_string(vr),
                     vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH
                         ? " and the certificate's subjectAltName (or set "
                           "ssl.endpoint.identification.algorithm= to skip the host check)"
                         : "");
            ERR_clear_error();
        } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            snprintf(err, errlen, "TLS handshake with %s: %s", host,
                     errno ? strerror(errno) : "connection closed by the broker");
        } else {
            char what[300];
            snprintf(what, sizeof what, "TLS handshake with %s", host);
            tls_errstr(err, errlen, what);
        }
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

ssize_t tls_client_read(void *ssl, void *buf, size_t n)
{
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(ssl, buf, n, &got) == 1) return (ssize_t)got;
    int e = SSL_get_error(ssl, 0);
    ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

ssize_t tls_client_write(void *ssl, const void *buf, size_t n)
{
    size_t put = 0;
    ERR_clear_error();
    if (SSL_write_ex(ssl, buf, n, &put) == 1) return (ssize_t)put;
    ERR_clear_error();
    return -1;
}
