#!/bin/bash
# run_s3_suite.sh BUILD_DIR [ctest args...] — start a private Ceph RGW,
# run the S3 integration suite (ctest -L '^s3$', plus any extra ctest
# arguments, e.g. `-L s3-big` for the 1 GiB test) in BUILD_DIR against it,
# and always tear it down, whatever happens.
#
#   tests/rgw/run_s3_suite.sh build-s3
#   TS_S3_BIG=1 tests/rgw/run_s3_suite.sh build-s3     # also the 1 GiB test
#
# The RGW gets its own temp dir and free ports, so an RGW you started by
# hand with start.sh is left alone.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:?usage: $0 BUILD_DIR [ctest args...]}
shift
[ -f "$BUILD/CTestTestfile.cmake" ] || { echo "run_s3_suite.sh: $BUILD is not a configured build dir" >&2; exit 2; }

free_port() { # first free loopback port from $1
    local p=$1
    while ss -ltn 2>/dev/null | grep -q "127.0.0.1:$p \|0.0.0.0:$p \|\*:$p "; do p=$((p + 1)); done
    echo "$p"
}
TMP=$(mktemp -d /tmp/ts-rgw-suite.XXXXXX)
export TS_RGW_DIR=$TMP/rgw
export TS_RGW_PORT=$(free_port 7480)
export TS_RGW_MON_PORT=$(free_port 6789)
export TS_RGW_TLS_PORT=$(free_port 7443)
cleanup() {
    "$HERE/stop.sh" || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/start.sh" || { echo "run_s3_suite.sh: RGW did not start; logs were in $TS_RGW_DIR/log" >&2
                      tail -20 "$TS_RGW_DIR"/log/*.log 2>/dev/null >&2; exit 1; }
# shellcheck disable=SC1091
. "$TS_RGW_DIR/env"
export TS_LOG_LEVEL=${TS_LOG_LEVEL:-warn}
labels=('-L' '^s3$')
[ "${TS_S3_BIG:-0}" = 1 ] && labels=('-L' '^s3(-big)?$')
(cd "$BUILD" && ctest --output-on-failure "${labels[@]}" "$@")
rc=$?
echo "run_s3_suite.sh: ctest exited $rc" >&2
exit $rc
