#!/bin/bash
# cluster_on_rgw.sh BUILD_DIR — the cluster of minio-compose/ (etcd + three
# tierbrokers with minio-compose/cluster.properties) run natively against Ceph
# RGW instead of MinIO: a topic with replication factor 3, an idempotent
# acks=all producer, one broker SIGKILLed, then every acknowledged record read
# back from offset 0, its oldest segments from the bucket
# (tests/rgw/cluster_on_rgw.py does the Kafka part, on tests/cluster/cluster.py).
#
#   tests/rgw/cluster_on_rgw.sh build
#
# An RGW already answering from $TS_RGW_DIR (its env file present, as while
# test.sh's RGW phase runs) is used and left running; otherwise a private one
# is started with start.sh on free ports and always torn down. Exit 0 pass,
# 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
for f in "$BUILD/broker/tierbroker" "$BUILD/broker-plugin/libtierstore-plugin.so"; do
    [ -e "$f" ] || { echo "cluster_on_rgw.sh: $f missing (build first)" >&2; exit 2; }
done

free_port() { # first free loopback port from $1
    local p=$1
    while ss -ltn 2>/dev/null | grep -q "127.0.0.1:$p \|0.0.0.0:$p \|\*:$p "; do p=$((p + 1)); done
    echo "$p"
}
TMP=$(mktemp -d /tmp/ts-rgw-cluster.XXXXXX)
own_rgw=0
rgw_answers() { [ -f "$1/env" ] && (. "$1/env"; curl -s -o /dev/null "$AWS_ENDPOINT_URL/"); }
if [ -n "${TS_RGW_DIR:-}" ] && rgw_answers "$TS_RGW_DIR"; then
    echo "cluster_on_rgw.sh: using the RGW of $TS_RGW_DIR" >&2
else
    export TS_RGW_DIR=$TMP/rgw
    export TS_RGW_PORT=$(free_port 7480)
    export TS_RGW_MON_PORT=$(free_port 6789)
    export TS_RGW_TLS_PORT=$(free_port 7443)
    own_rgw=1
fi
cleanup() {
    [ "$own_rgw" = 1 ] && "$HERE/stop.sh"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$own_rgw" = 1 ]; then
    nice "$HERE/start.sh" || { echo "cluster_on_rgw.sh: RGW did not start" >&2; exit 1; }
fi
# shellcheck disable=SC1091
. "$TS_RGW_DIR/env"
export TIERBROKER=$BUILD/broker/tierbroker TSPLUGIN=$BUILD/broker-plugin/libtierstore-plugin.so
export TS_CLUSTER_PROPERTIES=$ROOT/minio-compose/cluster.properties
export TS_LOG_LEVEL=${TS_LOG_LEVEL:-warn}
/usr/bin/python3 "$HERE/cluster_on_rgw.py"
rc=$?
echo "cluster_on_rgw.sh: exited $rc" >&2
exit $rc
