#!/bin/bash
# run.sh — engine benchmark on a file:// bucket in a temp dir (see README.md):
# append, offload, sequential and random reads and peak RSS, each next to a
# baseline run side by side in the same process, ratios printed.
# Builds Release in $TS_BENCH_BUILD (default build-bench-engine), then runs
# bench_engine with any arguments given here (--mib, --segment-mib, --reads,
# --dir, --only ...; or the TS_BENCH_* environment, see --help).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TS_BENCH_BUILD:-$ROOT/build-bench-engine}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
make -C "$BUILD" -j"$(nproc)" bench_engine >/dev/null || { echo "run.sh: build failed" >&2; exit 1; }
export TS_LOG_LEVEL=${TS_LOG_LEVEL:-warn}
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
exec "$BUILD/bench/engine/bench_engine" "$@"
