#!/bin/bash
# run.sh — tierbroker under a librdkafka load generator (bench_kafka.c), each
# figure next to its loopback baseline measured in the same run:
#   produce acks=1 / acks=-1 and consume throughput (1 KiB messages, batching
#   on) vs a loopback TCP copy of the same bytes; single-message delivery
#   latency vs a loopback round trip; produce and consume over the broker's
#   SSL listener (a CA and server certificate made with openssl here) next to
#   the same over plaintext. Not in ctest (timings).
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
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
tport=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 1 \
  -subj /CN=bench-ca 2>/dev/null &&
  openssl req -newkey rsa:2048 -nodes -keyout "$tmp/server.key" -out "$tmp/server.csr" \
    -subj /CN=localhost 2>/dev/null &&
  echo "subjectAltName=IP:127.0.0.1" >"$tmp/ext" &&
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial 1 \
    -days 1 -out "$tmp/server.pem" -extfile "$tmp/ext" 2>/dev/null &&
  cat "$tmp/server.key" "$tmp/server.pem" >"$tmp/keystore.pem" ||
  { echo "run.sh: openssl failed" >&2; exit 1; }
cat >"$tmp/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$tport
ssl.keystore.location=$tmp/keystore.pem
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
"$BUILD/bench/kafka/bench_kafka" --bootstrap "127.0.0.1:$port" \
  --tls-bootstrap "127.0.0.1:$tport" --ca "$tmp/ca.pem" "$@"
rc=$?
[ $rc -eq 0 ] || tail -20 "$tmp/broker.log" >&2
exit $rc
