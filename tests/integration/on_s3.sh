#!/bin/sh
# on_s3.sh CMD... — runs an engine integration test against the S3 store the
# S3 suite was given (tests/rgw/run_s3_suite.sh exports it; MinIO/AWS users
# export AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# TS_S3_TEST_BUCKET themselves). Exit 77 (skipped) when none is configured.
if [ -z "${TS_S3_TEST_BUCKET:-}" ]; then
  echo "on_s3.sh: TS_S3_TEST_BUCKET not set: no S3 store to run against (skipped)" >&2
  exit 77
fi
TS_TEST_REMOTE_URL="s3://${TS_S3_TEST_BUCKET}/engine-suite"
export TS_TEST_REMOTE_URL
exec "$@"
