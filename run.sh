#!/usr/bin/env bash
# run.sh — the main job on the embedded default (a file:// bucket under a local
# directory; no S3 server needed). Installs what it needs (Debian 12, root),
# builds, then:
#   ./run.sh              starts tierbroker on 127.0.0.1:9092 (Ctrl-C stops it) and
#                         prints how to produce/consume with kcat and see placement
#   ./run.sh demo         the demo through the broker: a Kafka client (librdkafka)
#                         produces ~300 MB of events, the plugin offloads closed
#                         segments, a fresh consumer reads everything back from
#                         offset 0 (cold data included) and verifies every message
#   ./run.sh engine-demo  the same exercise on the engine API, without the broker
# Options after demo/engine-demo: --mb N --partitions N
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
./scripts/install-deps.sh run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mode=${1:-broker}
[ $# -gt 0 ] && shift

write_config() { # write_config DIR PORT
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<CFG
# tierbroker on the embedded default: written by run.sh
listeners=PLAINTEXT://127.0.0.1:$port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
num.partitions=4
auto.create.topics.enable=true
plugin.path=$ROOT/build/broker-plugin/libtierstore-plugin.so
log.dirs=$dir/data
remote.storage.enable=true
remote.storage.url=file://$dir/bucket
log.segment.bytes=67108864
log.local.retention.bytes=268435456
log.retention.ms=-1
CFG
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "$mode" in
broker)
  dir=$ROOT/.run/broker
  write_config "$dir" 9092
  port_free 9092 || { echo "run.sh: 127.0.0.1:9092 is in use (another broker?)" >&2; exit 1; }
  cat <<MSG
tierbroker on 127.0.0.1:9092 — data in $dir/data, bucket file://$dir/bucket
  produce:    printf 'hello\nworld\n' | kcat -b 127.0.0.1:9092 -t demo -P
  consume:    kcat -b 127.0.0.1:9092 -t demo -C -o beginning -e
  group:      kcat -b 127.0.0.1:9092 -G mygroup demo
  placement:  build/cli/tierctl -c $dir/server.properties placement demo
  one offset: build/cli/tierctl -c $dir/server.properties locate demo 0 0
  settings:   build/broker/tierbroker --help      (Ctrl-C stops the broker)
MSG
  exec build/broker/tierbroker "$dir/server.properties"
  ;;
demo)
  dir=$ROOT/.run/kafka-demo
  rm -rf "$dir"
  port=9092
  while ! port_free $port; do port=$((port + 1)); done
  write_config "$dir" "$port"
  TS_LOG_LEVEL=${TS_LOG_LEVEL:-warn} build/broker/tierbroker "$dir/server.properties" \
    >"$dir/broker.log" 2>&1 &
  bpid=$!
  trap 'kill $bpid 2>/dev/null; wait $bpid 2>/dev/null' EXIT
  for _ in $(seq 100); do port_free $port || break; sleep 0.1; done
  port_free $port && { echo "run.sh: the broker did not start:" >&2; cat "$dir/broker.log" >&2; exit 1; }
  echo "tierbroker started on 127.0.0.1:$port (log: $dir/broker.log)"
  build/cli/tierstore-kafka-demo --bootstrap "127.0.0.1:$port" --config "$dir/server.properties" \
    --tierctl build/cli/tierctl --data-dir "$dir/data" "$@"
  ;;
engine-demo)
  exec build/cli/tierstore-demo --dir "$ROOT/.run/demo" "$@"
  ;;
*)
  echo "usage: ./run.sh [demo|engine-demo] [--mb N] [--partitions N]" >&2
  exit 2
  ;;
esac
