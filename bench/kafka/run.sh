#!/bin/bash
# run.sh — tierbroker under a librdkafka load generator (bench_kafka.c), each
# figure next to its loopback baseline measured in the same run:
#   produce acks=1 / acks=-1 and consume throughput (1 KiB messages, batching
#   on) vs a loopback TCP copy of the same bytes; single-message delivery
#   latency vs a loopback round trip. Not in ctest (timings).
#   bench/kafka/run.sh [--msgs N] [--size BYTES] [--pings N]
# Builds Release in $TS_BENCH_BUILD (default build-bench-kafka); the broker
# runs on a free loopback port with its data and file:// bucket in a temp dir.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TS_BENCH_BUILD:-$ROOT/build-bench-kafka}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
make -C "$BUILD" -j"$(nproc)" bench_kafka tierbroker tierstore-plugin >/dev/null ||
  { echo "run.sh: build failed" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$port
log.dirs=$tmp/data
remote.storage.url=file://$tmp/bucket
log.segment.bytes=67108864
PROPS
TS_LOG_LEVEL=warn "$BUILD/broker/tierbroker" "$tmp/server.properties" 2>"$tmp/broker.log" &
pid=$!
for _ in $(seq 1 100); do
  kcat -b "127.0.0.1:$port" -L -m 2 >/dev/null 2>&1 && break
  sleep 0.1
done
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
"$BUILD/bench/kafka/bench_kafka" --bootstrap "127.0.0.1:$port" "$@"
rc=$?
[ $rc -eq 0 ] || tail -20 "$tmp/broker.log" >&2
exit $rc
