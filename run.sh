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
#   ./run.sh cluster      a local etcd and three tierbrokers on 127.0.0.1:9092-9094
#                         sharing one file:// bucket (issue 10); Ctrl-C stops them
# Options after demo/engine-demo: --mb N --partitions N
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
mode=${1:-broker}
[ $# -gt 0 ] && shift
if [ "$mode" = cluster ]; then ./scripts/install-deps.sh cluster; else ./scripts/install-deps.sh run; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

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

# run_cluster: etcd on 127.0.0.1:2379 (peer 2380), brokers 1-3 on 9092-9094,
# one bucket; everything under .run/cluster (kept across runs: topics, data
# and committed offsets survive a restart of the whole thing).
run_cluster() {
  local dir=$ROOT/.run/cluster pids=() p
  mkdir -p "$dir"
  for p in 2379 2380 9092 9093 9094; do
    port_free $p || { echo "run.sh: 127.0.0.1:$p is in use (another run.sh cluster?)" >&2; exit 1; }
  done
  etcd --name run-sh --data-dir "$dir/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster run-sh=http://127.0.0.1:2380 --auto-compaction-mode revision \
    --auto-compaction-retention 10000 >"$dir/etcd.log" 2>&1 &
  pids+=($!)
  trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
  for _ in $(seq 100); do port_free 2379 || break; sleep 0.1; done
  for n in 1 2 3; do
    local bdir=$dir/broker-$n port=$((9091 + n))
    write_config "$bdir" $port
    sed -i "s#^remote.storage.url=.*#remote.storage.url=file://$dir/bucket#" "$bdir/server.properties"
    cat >>"$bdir/server.properties" <<CFG
node.id=$n
metadata.store.url=etcd://127.0.0.1:2379
broker.session.timeout.ms=6000
default.replication.factor=3
offsets.topic.num.partitions=8
CFG
    build/broker/tierbroker "$bdir/server.properties" >"$bdir/broker.log" 2>&1 &
    pids+=($!)
  done
  for port in 9092 9093 9094; do
    for _ in $(seq 150); do port_free $port || break; sleep 0.1; done
  done
  cat <<MSG
tierstore cluster: etcd 127.0.0.1:2379, brokers 1-3 on 127.0.0.1:9092-9094, bucket file://$dir/bucket
  logs:       $dir/etcd.log, $dir/broker-{1,2,3}/broker.log
  metadata:   kcat -b 127.0.0.1:9092 -L     (brokers, leaders, replicas, ISRs)
  produce:    printf 'hello\nworld\n' | kcat -b 127.0.0.1:9092,127.0.0.1:9093 -t demo -P -X acks=all
  consume:    kcat -b 127.0.0.1:9094 -t demo -C -o beginning -e
  leaders:    build/cli/tierctl -c $dir/broker-1/server.properties cluster
  failover:   kill -9 the leader's tierbroker (pgrep -f broker-2/server.properties), then kcat -L again
  Ctrl-C stops the cluster.
MSG
  wait -n "${pids[@]}" || true
  echo "run.sh: a process of the cluster exited; stopping the others (logs in $dir)" >&2
}

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
cluster)
  run_cluster
  ;;
*)
  echo "usage: ./run.sh [demo|engine-demo|cluster] [--mb N] [--partitions N]" >&2
  exit 2
  ;;
esac
