#!/bin/sh
# bench/cluster/run.sh — acks=-1 produce latency, three-broker cluster next to
# one broker and to a cluster replicating over SASL_SSL, in one run. Needs
# Debian's etcd (/usr/bin/etcd) and openssl. Not in ctest.
#   bench/cluster/run.sh [BUILD_DIR] [--n 2000]
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
[ $# -gt 0 ] && shift
export TIERCTL="${TIERCTL:-$build/cli/tierctl}" # the secure run's users
exec /usr/bin/python3 "$here/bench_cluster.py" "$build/broker/tierbroker" \
    "$build/broker-plugin/libtierstore-plugin.so" "$@"
