#!/bin/bash
# sts_web_identity.sh TEST_S3_CREDS — temporary keys from Ceph RGW's own STS.
#
# Runs against the RGW of tests/rgw/start.sh (its env loaded: AWS_ENDPOINT_URL,
# the static key pair, TS_S3_TEST_BUCKET; TS_RGW_DIR for its ceph.conf).
# Starts oidc_issuer.py (a local OpenID Connect issuer, test double of an
# EKS cluster's), registers it in RGW as an OIDC provider (thumbprint of its
# signing certificate), creates a role that trusts it with an s3:* policy,
# then runs `TEST_S3_CREDS --rgw-sts`: the store gets its keys through
# AssumeRoleWithWebIdentity with the issuer's token file (STS found through
# AWS_ENDPOINT_URL, as on RGW) and PUTs and GETs with them, session token
# signed. Removes the role and the provider afterwards. Exit 77 (skipped)
# without an RGW or python3-cryptography.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:?usage: $0 TEST_S3_CREDS}
skip() { echo "sts_web_identity.sh: skipped: $*"; exit 77; }
[ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${TS_S3_TEST_BUCKET:-}" ] && [ -n "${AWS_ACCESS_KEY_ID:-}" ] \
    || skip "no RGW (source tests/rgw/env.sh after tests/rgw/start.sh)"
CONF=${TS_RGW_DIR:-/tmp/ts-rgw}/ceph.conf
[ -f "$CONF" ] || skip "$CONF not found (set TS_RGW_DIR to the RGW's directory)"
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is not installed"
command -v radosgw-admin >/dev/null || skip "radosgw-admin missing"

TMP=$(mktemp -d /tmp/ts-sts.XXXXXX)
ISSUER_PID=
cleanup() {
    # SIGTERM makes the issuer remove the role and the provider it registered.
    [ -n "$ISSUER_PID" ] && kill "$ISSUER_PID" 2>/dev/null && wait "$ISSUER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "sts_web_identity.sh: FAIL: $*" >&2; exit 1; }

CEPH_CONF=$CONF radosgw-admin caps add --uid=tierstore --caps="roles=*;oidc-provider=*" >"$TMP/caps.out" 2>&1 \
    || fail "radosgw-admin caps add: $(tail -3 "$TMP/caps.out")"
/usr/bin/python3 "$HERE/oidc_issuer.py" --dir "$TMP" --aud tierstore-app --register "$AWS_ENDPOINT_URL" \
    >"$TMP/issuer.out" 2>"$TMP/issuer.err" &
ISSUER_PID=$!
for _ in $(seq 300); do grep -q "ROLE_ARN\|REGISTER_FAILED" "$TMP/issuer.out" 2>/dev/null && break; sleep 0.1; done
ROLE_ARN=$(awk '/^ROLE_ARN/{print $2}' "$TMP/issuer.out")
[ -n "$ROLE_ARN" ] || fail "the OIDC issuer did not start or register: $(cat "$TMP/issuer.out" "$TMP/issuer.err")"

TS_S3_TEST_ROLE_ARN=$ROLE_ARN TS_S3_TEST_TOKEN_FILE=$TMP/token "$BIN" --rgw-sts
