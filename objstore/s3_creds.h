/*
 * s3_creds.h — where the S3 client's settings come from, resolved the way
 * the AWS tools do (see objstore/README-s3.md for the order):
 *   keys:     aws.access.key.id/aws.secret.access.key/aws.session.token, then
 *             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then
 *             web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or
 *             web_identity_token_file + role_arn of the config file's
 *             profile; STS AssumeRoleWithWebIdentity, s3_sts.c), then the
 *             shared credentials file [profile], then the config file
 *             [profile NAME] (or [default]), then the EC2 instance metadata
 *             service (IMDSv2, s3_imds.c) unless AWS_EC2_METADATA_DISABLED;
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
#include <stdint.h>

#include "tierstore.h"

/* Which link of the chain supplies the keys. STATIC keys are in the struct;
 * the others are fetched, and refreshed before they expire, by the
 * provider (s3_provider.h). */
typedef enum ts_s3_creds_kind {
    TS_S3_CREDS_STATIC = 0,
    TS_S3_CREDS_WEB_IDENTITY = 1,
    TS_S3_CREDS_IMDS = 2,
} ts_s3_creds_kind;

typedef struct ts_s3_creds {
    ts_s3_creds_kind kind;
    char access_key_id[256];
    char secret_access_key[256]; /* never logged, never copied into messages */
    char session_token[4096];
    char region[64];
    char endpoint[1024];
    char ca_bundle[1024];
    char profile[128];
    char source[1100]; /* where the keys came from, for messages ("environment") */
    /* TS_S3_CREDS_WEB_IDENTITY: AWS_ROLE_ARN / role_arn, AWS_WEB_IDENTITY_TOKEN_FILE /
     * web_identity_token_file, AWS_ROLE_SESSION_NAME / role_session_name (empty =
     * "tierstore-<ms since the epoch>"), the STS endpoint (AWS_ENDPOINT_URL_STS,
     * AWS_ENDPOINT_URL, https://sts.<region>.amazonaws.com). */
    char role_arn[2048];
    char web_identity_token_file[1024];
    char role_session_name[128];
    char sts_endpoint[1024];
    /* TS_S3_CREDS_IMDS: AWS_EC2_METADATA_SERVICE_ENDPOINT (or the profile's
     * ec2_metadata_service_endpoint; AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6
     * picks http://[fd00:ec2::254]), default http://169.254.169.254;
     * AWS_METADATA_SERVICE_TIMEOUT (s, default 1) caps each request and
     * AWS_METADATA_SERVICE_NUM_ATTEMPTS (default 1) counts the tries. */
    char imds_endpoint[256];
    int64_t imds_timeout_ms;
    int imds_attempts;
    /* Why the static links did not match, for the message when IMDS, the
     * last resort, fails too. */
    char not_found[2400];
} ts_s3_creds;

typedef const char *(*ts_s3_getenv_fn)(const char *name, void *opaque);

/* Resolves everything above. Contacts nothing: for WEB_IDENTITY and IMDS it
 * only records where the keys will come from. TS_E_CONFIG with a message
 * listing the places looked at when no access key pair is found and IMDS
 * is disabled (AWS_EC2_METADATA_DISABLED=true), or when a web identity is
 * half configured. getenv_fn NULL = getenv(3). */
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
