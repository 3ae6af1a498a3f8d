/*
 * s3_provider.h — the S3 client's keys, fetched and refreshed before they
 * expire, safe to share between threads.
 *
 * A ts_s3_keys is one immutable, refcounted set of keys (id, secret,
 * session token, expiry). Every request takes a reference before it signs
 * and drops it when its headers are built, so a refresh never changes keys
 * under a request that is signing with them. The provider holds the
 * current set and replaces it:
 *
 *   - static keys (config, environment, shared files) never expire;
 *   - keys from STS AssumeRoleWithWebIdentity (s3_sts.c) or the EC2
 *     instance metadata service (IMDSv2, s3_imds.c) are refreshed ahead of
 *     their Expiration: 5 minutes ahead, or at 80% of a lifetime shorter
 *     than 25 minutes;
 *   - one refresh at a time: the thread that finds the keys due refreshes
 *     them without holding the lock; the others keep using the current
 *     keys while they are valid, and wait for that refresh only when they
 *     are not;
 *   - a failed refresh keeps the old keys while they are valid and is
 *     retried with exponential backoff (0.5 s doubling to 30 s); once they
 *     have expired, requests fail with a message saying which source failed,
 *     how, and what to check — retriable (TS_E_REMOTE_RETRIABLE) when the
 *     source was unreachable or busy, TS_E_AUTH when it refused.
 *
 * Secrets (secret key, session token, the web identity token, the IMDS
 * session token) are wiped when freed and never logged.
 */
#ifndef TS_OBJSTORE_S3_PROVIDER_H
#define TS_OBJSTORE_S3_PROVIDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "s3_creds.h"
#include "tierstore.h"

typedef struct ts_s3_keys {
    atomic_int refs;
    char access_key_id[256];
    char secret_access_key[256]; /* never logged */
    char session_token[4096];    /* never logged; empty = none */
    int64_t expires_ms;          /* wall clock, ms since the epoch; 0 = never */
    char source[1200];           /* for messages: where the keys came from */
} ts_s3_keys;

/* Drops one reference; the last one wipes and frees. NULL is a no-op. */
void ts_s3_keys_release(ts_s3_keys *k);

typedef struct ts_s3_provider ts_s3_provider;

/* Test and tuning knobs; zero fields take the defaults above. */
typedef struct ts_s3_provider_opts {
    int64_t backoff_base_ms, backoff_max_ms;
    int64_t http_timeout_ms; /* STS request cap, at most 10 s (IMDS: see s3_creds.h) */
    int tls_verify;          /* for STS over https; 1 unless s3.tls.verify=false */
} ts_s3_provider_opts;

/* Builds the provider for c (not kept; copied). For web identity and IMDS
 * it fetches the first keys now, so a misconfiguration is an error at open:
 * TS_E_CONFIG when IMDS (the chain's last resort) cannot be reached or has
 * no role (the message lists every place looked at), TS_E_AUTH when STS
 * refuses, TS_E_REMOTE_RETRIABLE when STS cannot be reached. */
ts_status ts_s3_provider_create(const ts_s3_creds *c, const ts_s3_provider_opts *o,
                                ts_s3_provider **out, char *errstr, size_t errlen);
void ts_s3_provider_destroy(ts_s3_provider *p);

/* The keys to sign one request with (a new reference: release it). Any
 * thread; may refresh (network, outside the lock) or wait for another
 * thread's refresh when the keys have expired. */
ts_status ts_s3_provider_get(ts_s3_provider *p, ts_s3_keys **out, char *errstr, size_t errlen);

/* The server rejected k as expired or invalid (ExpiredToken): the next get
 * refreshes at once. Returns 1 when the provider can refresh (not static
 * keys) and k was still its current set, 0 otherwise. Any thread. */
int ts_s3_provider_invalidate(ts_s3_provider *p, const ts_s3_keys *k);

/* When keys expiring at expires_ms (0 = never), received at now_ms, are
 * refreshed and when they stop being used (the policy above, as a pure
 * function for the tests). */
void ts_s3_provider_schedule(int64_t now_ms, int64_t expires_ms, int64_t *refresh_at_ms,
                             int64_t *usable_until_ms);

typedef struct ts_s3_provider_stats {
    uint64_t fetches;  /* refresh attempts, the first fetch included */
    uint64_t failures; /* of those, failed */
} ts_s3_provider_stats;
void ts_s3_provider_get_stats(ts_s3_provider *p, ts_s3_provider_stats *out);

/* ---------------------------------------------------------------- sources */

/* One small HTTP exchange for the credential sources (not the S3 pool: they
 * run once an hour, on the refreshing thread). hdrs are "Name: value"
 * lines, NULL-terminated; body NULL = GET unless method says otherwise.
 * no_proxy: bypass proxy variables (IMDS is link-local). Fills *status
 * (0 when no answer) and resp (capped). Returns TS_OK when an HTTP answer
 * arrived, whatever its status; TS_E_TIMEOUT / TS_E_REMOTE_RETRIABLE
 * (message in errstr) otherwise. */
typedef struct ts_s3_http_opts {
    int64_t timeout_ms, connect_timeout_ms;
    int no_proxy, tls_verify;
    const char *ca_bundle;
} ts_s3_http_opts;
ts_status ts_s3_cred_http(const char *method, const char *url, const char *const *hdrs,
                          const char *body, const ts_s3_http_opts *o, long *status, ts_buf *resp,
                          char *errstr, size_t errlen);

/* The fetches below run on the provider's refreshing thread, one at a time
 * per provider, with no lock held (m is that thread's alone meanwhile).
 *
 * IMDSv2 (s3_imds.c). The session token is cached in m between fetches. */
typedef struct ts_s3_imds {
    char endpoint[256];
    int64_t timeout_ms;
    int attempts;
    char token[1024];         /* IMDSv2 session token; never logged */
    int64_t token_until_mono; /* ts_mono_ms() after which a new one is fetched */
    uint64_t requests;        /* HTTP requests sent, for tests */
} ts_s3_imds;
/* Token (PUT /latest/api/token), role name, then the role's keys. A 401
 * drops the cached token and tries once more with a new one. TS_E_NOT_FOUND
 * when the instance has no role; TS_E_TIMEOUT / TS_E_REMOTE_RETRIABLE when
 * the service does not answer; TS_E_CORRUPT on an unreadable document. */
ts_status ts_s3_imds_fetch(ts_s3_imds *m, ts_s3_keys *out, char *errstr, size_t errlen);

/* STS AssumeRoleWithWebIdentity (s3_sts.c): reads the token file (again on
 * every call: the kubelet rotates it), POSTs the unsigned query. TS_E_AUTH
 * when STS refuses (the message has its code and names the role),
 * TS_E_REMOTE_RETRIABLE for throttling, 5xx and unreachable endpoints,
 * TS_E_CONFIG when the token file cannot be read. */
typedef struct ts_s3_sts {
    char endpoint[1024];
    char role_arn[2048];
    char token_file[1024];
    char session_name[128];
    ts_s3_http_opts http;
    char ca_bundle[1024];
} ts_s3_sts;
ts_status ts_s3_sts_fetch(const ts_s3_sts *w, ts_s3_keys *out, char *errstr, size_t errlen);

/* ---------------------------------------------------------------- parsers */
/* (untrusted input; exported for the unit tests and the fuzz target) */

/* AssumeRoleWithWebIdentityResponse: the four Credentials fields. */
ts_status ts_s3_sts_parse(const char *body, size_t len, ts_s3_keys *out, char *errstr,
                          size_t errlen);
/* STS ErrorResponse: code and message (truncated to fit). 1 when found. */
int ts_s3_sts_parse_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
                          size_t msglen);
/* IMDS credentials document: Code (when present, must be "Success"),
 * AccessKeyId, SecretAccessKey, Token, Expiration. */
ts_status ts_s3_imds_parse(const char *body, size_t len, ts_s3_keys *out, char *errstr,
                           size_t errlen);
/* The string member key of a flat JSON object, unescaped (\uXXXX to UTF-8).
 * 0 when found and fits, -1 when absent, not a string, malformed or too long. */
int ts_s3_json_get(const char *body, size_t len, const char *key, char *out, size_t outlen);
/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)" to ms since the epoch. -1 if malformed. */
int64_t ts_s3_parse_iso8601(const char *s);

#endif
