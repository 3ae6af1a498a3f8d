#!/bin/bash
# run.sh — cost of the record walk on zstd-compressed produce (README.md).
#   bench/batch/run.sh [MiB of records, default 128] [rounds, default 3]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TS_BENCH_BUILD:-$ROOT/build-bench-engine}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
make -C "$BUILD" -j"$(nproc)" bench_batch >/dev/null || { echo "run.sh: build failed" >&2; exit 1; }
export TS_LOG_LEVEL=${TS_LOG_LEVEL:-warn}
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
exec "$BUILD/bench/batch/bench_batch" "$@"
