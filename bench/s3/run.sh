#!/bin/bash
# run.sh — S3 upload and cold-read benchmarks against a private Ceph RGW.
#
#  1. upload throughput of one 256 MiB file: tierstore's writer (multipart,
#     s3.multipart.part.bytes x s3.multipart.parallelism) and
#     `/usr/bin/aws s3 cp` of the same file to the same RGW, side by side,
#     the ratio printed (aws includes its Python start-up: `aws --version`
#     is timed next to each copy and the median reported and excluded);
#     each round prints both clients' CPU seconds and the load average;
#  2. cold-read latency: random ranged GETs (64 KiB and 4 MiB) p50/p99 and
#     bytes fetched per read;
#  3. the engine's cold reads (bench_s3 engine-cold): sequential with an
#     empty cache next to whole-object GETs and to every chunk GET and
#     decompressed on the reader's thread count, random 64 KiB with no cache
#     next to one chunk's ranged GET. TS_BENCH_ONLY=cold runs only this part,
#     TS_BENCH_ONLY=upload only the first.
# Starts RGW, builds (Release) in $TS_BENCH_BUILD (default build-bench-s3),
# runs, and always tears RGW down. Sizes: TS_BENCH_MIB (default 256).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TS_BENCH_BUILD:-$ROOT/build-bench-s3}
MIB=${TS_BENCH_MIB:-256}
AWS=/usr/bin/aws
[ -x "$AWS" ] || { echo "run.sh: $AWS not found (apt-get install awscli)" >&2; exit 2; }

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
nice make -C "$BUILD" -j2 bench_s3 >/dev/null || { echo "run.sh: build failed" >&2; exit 1; }

free_port() { local p=$1; while ss -ltn 2>/dev/null | grep -q ":$p "; do p=$((p + 1)); done; echo "$p"; }
TMP=$(mktemp -d /tmp/ts-bench-s3.XXXXXX)
export TS_RGW_DIR=$TMP/rgw TS_RGW_PORT=$(free_port 7480) TS_RGW_MON_PORT=$(free_port 6789) \
    TS_RGW_TLS_PORT=$(free_port 7443)
cleanup() { "$ROOT/tests/rgw/stop.sh" || true; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$ROOT/tests/rgw/start.sh" || exit 1
# shellcheck disable=SC1091
. "$TS_RGW_DIR/env"
export TS_LOG_LEVEL=warn

FILE=$TMP/segment.bin
head -c $((MIB * 1048576)) /dev/urandom > "$FILE"
BUCKET=$TS_S3_TEST_BUCKET
now() { date +%s.%N; }

if [ "${TS_BENCH_ONLY:-all}" != cold ]; then
echo "== upload of $MIB MiB (tierstore: part ${TS_BENCH_PART_BYTES:-8388608} B x ${TS_BENCH_PARALLELISM:-4} in flight; aws CLI defaults: 8 MiB x 10)"
# A fresh RGW is slow for its first few hundred MiB: warm it up first, then
# alternate the two clients for ROUNDS rounds and compare medians.
ROUNDS=${TS_BENCH_ROUNDS:-3}
"$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --quiet "$FILE" "s3://$BUCKET/bench/warmup.bin" || exit 1
"$BUILD/bench/s3/bench_s3" upload "$FILE" warmup2.bin >/dev/null || exit 1
ts_all=() aws_all=() start_all=()
for r in $(seq "$ROUNDS"); do
    out=$("$BUILD/bench/s3/bench_s3" upload "$FILE" seg-ts.bin) || exit 1
    ts_s=$(echo "$out" | awk '/^SECONDS/ {print $2}')
    ts_cpu=$(echo "$out" | awk '/^CPU_SECONDS/ {print $2}')
    ts_all+=("$ts_s")
    # The CLI's start-up, timed each round under the same load as its copy.
    t0=$(now); "$AWS" --version >/dev/null 2>&1; t1=$(now)
    start_all+=("$(echo "$t1 - $t0" | bc -l)")
    t0=$(now)
    aws_cpu=$( { /usr/bin/time -f 'CPU %U %S' "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --quiet \
        "$FILE" "s3://$BUCKET/bench/seg-aws.bin" 2>&1 >/dev/null || echo FAILED; } |
        awk '/^CPU / {print $2 + $3} /FAILED/ {print "FAILED"}')
    t1=$(now)
    [ "$aws_cpu" = FAILED ] && exit 1
    aws_s=$(echo "$t1 - $t0" | bc -l)
    aws_all+=("$aws_s")
    printf 'round %d: tierstore %6.1f MiB/s (%.2f s, %.2f s CPU)   aws s3 cp %6.1f MiB/s (%.2f s, %.2f s CPU, start-up %.2f s)   load %s\n' \
        "$r" "$(echo "$MIB / $ts_s" | bc -l)" "$ts_s" "$ts_cpu" "$(echo "$MIB / $aws_s" | bc -l)" \
        "$aws_s" "$aws_cpu" "${start_all[-1]}" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ts_m=$(median "${ts_all[@]}")
aws_m=$(median "${aws_all[@]}")
startup=$(median "${start_all[@]}")
printf 'median: tierstore %.1f MiB/s, aws s3 cp %.1f MiB/s (aws includes ~%.2f s CLI start-up)\n' \
    "$(echo "$MIB / $ts_m" | bc -l)" "$(echo "$MIB / $aws_m" | bc -l)" "$startup"
printf 'ratio tierstore/aws throughput: %.2fx (%.2fx with aws start-up excluded)\n' \
    "$(echo "$aws_m / $ts_m" | bc -l)" "$(echo "($aws_m - $startup) / $ts_m" | bc -l)"

echo "== cold reads of seg-ts.bin (every read a ranged GET to RGW)"
"$BUILD/bench/s3/bench_s3" cold-read seg-ts.bin 300 65536 || exit 1
"$BUILD/bench/s3/bench_s3" cold-read seg-ts.bin 100 4194304 || exit 1
fi

# Issue 13 item 2: the engine's cold reads on RGW, next to what the store
# itself delivers (TS_BENCH_COLD_MIB of batches, 300 random reads).
# TS_BENCH_READER_THREADS may list several values ("2 8"): one run each.
[ "${TS_BENCH_ONLY:-all}" = upload ] && exit 0
for threads in ${TS_BENCH_READER_THREADS:-default}; do
    echo "== engine cold reads on RGW (${TS_BENCH_COLD_MIB:-256} MiB, 1 partition, remote.log.reader.threads $threads)"
    rm -rf "$TMP/engine" && mkdir -p "$TMP/engine"
    [ "$threads" = default ] && threads=
    TS_BENCH_READER_THREADS=$threads \
        "$BUILD/bench/s3/bench_s3" engine-cold "$TMP/engine" "${TS_BENCH_COLD_MIB:-256}" 300 || exit 1
done
