#!/bin/sh
# bench/broker/run.sh — tierbroker end-to-end latency and throughput, alone and
# next to a cold reader. Not in ctest (timings).
#   bench/broker/run.sh [BUILD_DIR] [--n 1000] [--msgs 200000]
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$here/bench_broker.py" "$build/broker/tierbroker" \
    "$build/broker-plugin/libtierstore-plugin.so" "$@"
