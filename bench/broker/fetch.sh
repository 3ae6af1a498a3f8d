#!/bin/bash
# fetch.sh — tierbroker's hot Fetch path vs sendfile(2) of the same segment
# files over loopback TCP, in one run (issue 13 item 3: goal >= 0.8x):
#   1. sendfile baseline: bench_fetch sends the topic's .log files to itself
#   2. the broker with fetch.zero.copy.enable=true (sendfile from the queue)
#   3. the broker with fetch.zero.copy.enable=false (the copy path, as before)
# each ROUNDS times over the whole topic, in SAMPLES pairs (baseline, broker)
# measured back to back; the median of the pair ratios is printed. Not in
# ctest (timings).
#   bench/broker/fetch.sh [BUILD_DIR] [--parts 4] [--mib 32] [--rounds 2] [--samples 5]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
parts=4 mib=32 rounds=2 samples=5
while [ $# -gt 0 ]; do
  case $1 in
    --parts) parts=$2; shift 2 ;;
    --mib) mib=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    *) echo "usage: $0 [BUILD_DIR] [--parts N] [--mib MiB-per-partition] [--rounds N] [--samples N]" >&2; exit 2 ;;
  esac
done
bin=$build/bench/broker/bench_fetch
broker=$build/broker/tierbroker
plugin=$build/broker-plugin/libtierstore-plugin.so
for f in "$bin" "$broker" "$plugin"; do
  [ -x "$f" ] || [ -f "$f" ] || { echo "fetch.sh: $f missing: build first" >&2; exit 1; }
done
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

start_broker() { # $1: fetch.zero.copy.enable
  cat >"$tmp/server.properties" <<P
listeners=PLAINTEXT://127.0.0.1:$port
log.dirs=$tmp/data
plugin.path=$plugin
remote.storage.enable=false
num.partitions=$parts
log.segment.bytes=$((256 << 20))
fetch.max.bytes=$((64 << 20))
fetch.zero.copy.enable=$1
P
  "$broker" "$tmp/server.properties" >>"$tmp/broker.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
    sleep 0.05
  done
  echo "fetch.sh: broker did not start:" >&2; tail -5 "$tmp/broker.log" >&2; exit 1
}
stop_broker() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

start_broker true
line=$(head -c 1000 /dev/zero | tr '\0' 'x')
n=$((mib * 1024 * 1024 / 1001))
for p in $(seq 0 $((parts - 1))); do
  { yes "$line" || true; } | head -n "$n" |
    kcat -P -b 127.0.0.1:$port -t bench -p "$p" -X acks=1 -X batch.size=1000000 -X linger.ms=50 -z none
done
files=$(ls "$tmp"/data/bench-*/*.log)
rate() { awk '{ printf "%.1f", $2 / $3 / 1048576 }'; }
fetch() { "$bin" fetch 127.0.0.1:$port bench "$parts" "$1" $((64 << 20)) $((8 << 20)) | rate; }
# Pairs measured back to back (a busy machine drifts between minutes): each
# broker figure is divided by the sendfile figure taken just before it; the
# median of the pairs is printed.
pairs() { # $1: label; prints "label: broker-rates | baseline-rates | median ratio"
  local r=() b=() q=()
  fetch 1 >/dev/null # warm the page cache and the broker, untimed
  for _ in $(seq "$samples"); do
    local s z
    s=$("$bin" sendfile "$rounds" $((parts * (8 << 20))) $files | rate)
    z=$(fetch "$rounds")
    b+=("$s") r+=("$z") q+=("$(awk -v z="$z" -v s="$s" 'BEGIN { printf "%.3f", z / s }')")
  done
  local med
  med=$(printf '%s\n' "${q[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  printf '  %-30s %s MiB/s  (sendfile %s)  median %.2fx sendfile\n' "$1" "${r[*]}" "${b[*]}" "$med"
}
echo "hot Fetch, $parts partitions x $mib MiB, $samples pairs of $rounds rounds, 8 MiB per partition and read:"
pairs "zero-copy (sendfile):"
stop_broker
start_broker false
pairs "copy (before):"
stop_broker
