#!/bin/bash
# start.sh — bring up a single-node Ceph RGW on loopback for the S3 tests.
#
# One mon (v1:127.0.0.1:6789, auth none), one memstore OSD, no mgr, and
# radosgw (beast) on 127.0.0.1:7480. Data lives in $TS_RGW_DIR (default
# /tmp/ts-rgw); stop.sh kills the daemons by their pid files and removes it.
# Idempotent: when RGW already answers from this directory it only rewrites
# the env file. Writes $TS_RGW_DIR/env with the variables the S3 suite reads
# (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
# TS_S3_TEST_BUCKET); `source tests/rgw/env.sh` loads them. RGW also serves
# HTTPS on 127.0.0.1:$TS_RGW_TLS_PORT (default 7443) with a self-signed
# certificate for 127.0.0.1/localhost (TS_S3_TEST_TLS_ENDPOINT and
# TS_S3_TEST_CA_BUNDLE in the env file) for the TLS tests.
set -euo pipefail

DIR=${TS_RGW_DIR:-/tmp/ts-rgw}
PORT=${TS_RGW_PORT:-7480}
TLS_PORT=${TS_RGW_TLS_PORT:-7443}
MON_PORT=${TS_RGW_MON_PORT:-6789}
ACCESS=${TS_RGW_ACCESS_KEY:-TIERSTORETESTKEY0001}
SECRET=${TS_RGW_SECRET_KEY:-tierstoreTestSecretKey0000000000000000001}
BUCKET=${TS_RGW_BUCKET:-tierstore-test}
MEM_BYTES=${TS_RGW_MEMSTORE_BYTES:-8589934592}
TIMEOUT=${TS_RGW_TIMEOUT:-120}
AWS=/usr/bin/aws

die() {
    echo "rgw/start.sh: error: $*" >&2
    for f in "$DIR"/log/*.log; do  # the last lines of each daemon log say why
        [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 8 "$f" >&2; }
    done
    exit 1
}
say() { echo "rgw/start.sh: $*" >&2; }

for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl openssl; do
    command -v "$b" >/dev/null || die "'$b' not found; install: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common curl"
done
[ -x "$AWS" ] || die "$AWS not found; install Debian's awscli (apt-get install -y awscli)"
[ "$(id -u)" = 0 ] || say "warning: not root; ceph daemons may fail to start"

write_env() {
    cat > "$DIR/env" <<EOT
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export TS_S3_TEST_BUCKET=$BUCKET
export AWS_EC2_METADATA_DISABLED=true
export TS_S3_TEST_TLS_ENDPOINT=https://127.0.0.1:$TLS_PORT
export TS_S3_TEST_CA_BUNDLE=$DIR/tls/cert.pem
EOT
}

alive() { # pidfile
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

if [ -d "$DIR" ] && alive "$DIR/run/rgw.pid" && curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    write_env
    say "RGW already running from $DIR on 127.0.0.1:$PORT; env in $DIR/env"
    exit 0
fi
if [ -d "$DIR" ]; then
    say "stale $DIR found; stopping leftovers and wiping it"
    TS_RGW_DIR="$DIR" "$(dirname "$0")/stop.sh" || true
fi
if ss -ltn 2>/dev/null | grep -q "127.0.0.1:$PORT "; then
    die "port $PORT is already taken by another process; set TS_RGW_PORT"
fi
if ss -ltn 2>/dev/null | grep -q "127.0.0.1:$TLS_PORT "; then
    die "port $TLS_PORT (HTTPS) is already taken by another process; set TS_RGW_TLS_PORT"
fi
if ss -ltn 2>/dev/null | grep -q "127.0.0.1:$MON_PORT "; then
    die "port $MON_PORT (mon) is already taken by another process; set TS_RGW_MON_PORT"
fi

mkdir -p "$DIR"/{mon,osd,run,log,rgw,tls}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tierstore-test-rgw" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" >"$DIR/log/openssl.out" 2>&1 \
    || die "cannot create the test TLS certificate: $(tail -3 "$DIR/log/openssl.out")"
FSID=$(cat /proc/sys/kernel/random/uuid)
CONF=$DIR/ceph.conf
cat > "$CONF" <<EOT
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
err to stderr = false
log to stderr = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd objectstore = memstore
memstore device bytes = $MEM_BYTES
osd max object name len = 460
osd max object namespace len = 64
osd crush chooseleaf type = 0
# An OSD sets its device class by a mon command as it starts; under load that
# command has left before the OSD's monitor client knew the fsid, the mon
# refused it ("wrong fsid") and the OSD exited, three starts in a row. One
# memstore OSD needs no device class: skip it.
osd class update on start = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
mon data = $DIR/mon/\$name
osd data = $DIR/osd/\$name
keyring = $DIR/keyring
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT ssl_endpoint=127.0.0.1:$TLS_PORT ssl_certificate=$DIR/tls/cert.pem ssl_private_key=$DIR/tls/key.pem
rgw data = $DIR/rgw
# STS (AssumeRoleWithWebIdentity with a local OIDC issuer: tests/rgw/sts_web_identity.sh)
rgw s3 auth use sts = true
rgw sts key = tierstorestskey1
pid file = $DIR/run/rgw.pid
log file = $DIR/log/rgw.log
EOT
export CEPH_CONF=$CONF
touch "$DIR/keyring"

wait_for() { # description, command...
    local what=$1; shift
    local t0=$SECONDS
    until "$@" >/dev/null 2>&1; do
        if (( SECONDS - t0 > TIMEOUT )); then
            die "timed out after ${TIMEOUT}s waiting for $what (logs in $DIR/log)"
        fi
        sleep 0.5
    done
}

say "mon"
monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$DIR/monmap" >/dev/null \
    || die "monmaptool failed"
ceph-mon --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mon-mkfs.out" 2>&1 \
    || die "ceph-mon --mkfs failed: $(tail -5 "$DIR/log/mon-mkfs.out")"
ceph-mon -i a || die "ceph-mon failed to start (see $DIR/log/mon.a.log)"
wait_for "the monitor" timeout 5 ceph -s

say "osd"
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph osd new "$OSD_UUID") || die "ceph osd new failed"
mkdir -p "$DIR/osd/osd.$OSD_ID"
ceph-osd -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >"$DIR/log/osd-mkfs.out" 2>&1 \
    || die "ceph-osd --mkfs failed: $(tail -5 "$DIR/log/osd-mkfs.out")"
# ceph-osd has been seen to exit at once on its first start now and then;
# a second start works, so try up to three times before giving up.
for try in 1 2 3; do
    ceph-osd -i "$OSD_ID" && break
    [ "$try" = 3 ] && die "ceph-osd failed to start 3 times (see $DIR/log/osd.$OSD_ID.log)"
    say "ceph-osd exited at start (try $try); retrying"
    sleep 1
done
osd_up() { ceph osd dump 2>/dev/null | grep -q "^osd.$OSD_ID up"; }
wait_for "osd.$OSD_ID to come up" osd_up

say "radosgw"
radosgw -n client.rgw.a || die "radosgw failed to start (see $DIR/log/rgw.log)"
wait_for "radosgw on 127.0.0.1:$PORT" curl -sf -o /dev/null "http://127.0.0.1:$PORT/"

say "user and bucket"
wait_for "radosgw-admin user create" radosgw-admin user create --uid=tierstore \
    --display-name="tierstore tests" --access-key="$ACCESS" --secret-key="$SECRET"
write_env
# shellcheck disable=SC1091
( . "$DIR/env"; wait_for "bucket $BUCKET" "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 mb "s3://$BUCKET" )
wait_for "radosgw HTTPS on 127.0.0.1:$TLS_PORT" curl -sf --cacert "$DIR/tls/cert.pem" -o /dev/null "https://127.0.0.1:$TLS_PORT/"
say "ready: RGW on http://127.0.0.1:$PORT and https://127.0.0.1:$TLS_PORT, bucket $BUCKET; env in $DIR/env (source tests/rgw/env.sh)"
