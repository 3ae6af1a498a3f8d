/*
 * s3_creds.h — where the S3 client's settings come from, resolved the way
 * the AWS tools do (see objstore/README-s3.md for the order):
 *   keys:     aws.access.key.id/aws.secret.access.key/aws.session.token, then
 *             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then
 *             the shared credentials file [profile], then the config file
 *             [profile NAME] (or [default]);
 *   profile:  aws.profile, AWS_PROFILE, "default";
 *   region:   aws.region, AWS_REGION, AWS_DEFAULT_REGION, config file region,
 *             us-east-1;
 *   endpoint: aws.endpoint.url, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, config
 *             file endpoint_url, none (AWS);
 *   CA:       aws.ca.bundle, AWS_CA_BUNDLE, config file ca_bundle, system.
 * Files: AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials) and
 * AWS_CONFIG_FILE (default ~/.aws/config).
 *
 * The environment is read through a callback so tests can supply their own.
 */
#ifndef TS_OBJSTORE_S3_CREDS_H
#define TS_OBJSTORE_S3_CREDS_H

#include <stddef.h>

#include "tierstore.h"

typedef struct ts_s3_creds {
    char access_key_id[256];
    char secret_access_key[256]; /* never logged, never copied into messages */
    char session_token[4096];
    char region[64];
    char endpoint[1024];
    char ca_bundle[1024];
    char profile[128];
    char source[1100]; /* where the keys came from, for messages ("environment") */
} ts_s3_creds;

typedef const char *(*ts_s3_getenv_fn)(const char *name, void *opaque);

/* Resolves everything above. TS_E_CONFIG with a message listing the places
 * looked at when no access key pair is found. getenv_fn NULL = getenv(3). */
ts_status ts_s3_creds_resolve(const ts_config *cfg, ts_s3_getenv_fn getenv_fn, void *opaque,
                              ts_s3_creds *out, char *errstr, size_t errlen);

/* Looks up key in [section] of an INI text (AWS shared file syntax: `#` and
 * `;` comments, `key = value`, indented lines are sub-settings and are
 * skipped). Returns 0 and copies the trimmed value when found. */
int ts_s3_ini_get(const char *text, size_t len, const char *section, const char *key, char *out,
                  size_t outlen);

/* Wipes the secret and the session token. */
void ts_s3_creds_wipe(ts_s3_creds *c);

#endif
